"""Flash and stack of each native kernel source, measured by compiling it for the Cortex-M4 (the fit verdict's code
and stack figures: tinydeploy.engines.native).

Each firmware/engine/*.c compiles alone with the virtual board's flags (-Os, hard float); its flash is the object's
text and data (every function it has: an upper bound, the linker drops what a model does not call) and its stack
is the deepest call path from any of its functions, from GCC's call graph with frame sizes (-fcallgraph-info=su).
Stack arrays sized at run time (a fast kernel's scratch when the plan has no room for it) are not in these figures:
the plan knows their size and adds it. Regenerate after changing a kernel:

    python -m tinydeploy.engine.kernel_costs      # rewrites kernel_costs.toml (needs arm-none-eabi-gcc)
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from functools import lru_cache
from pathlib import Path

from tinydeploy.paths import firmware_dir

TABLE = Path(__file__).with_name("kernel_costs.toml")
CPU_FLAGS = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
COMPILE_FLAGS = [*CPU_FLAGS, "-Os", "-ffunction-sections", "-fdata-sections", "-std=gnu11"]
# A naked assembly routine has no frame GCC knows of: it pushes at most r0, r4-r11 and lr (td_dot.h).
NAKED_FRAME_BYTES = 40
# A call out of the file (memset, memcpy): newlib's take at most this much.
LIBRARY_CALL_BYTES = 32

_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "([^"]*)"')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')
_FRAME = re.compile(r"\\n(\d+) bytes \(([a-z,]+)\)")


def _deepest_stacks(callgraphs: dict[str, str]) -> dict[str, tuple[int, bool]]:
    """Per file: the largest sum of frames along any call path from one of its functions (calls into the other
    files followed), and whether any function on the way sizes an array at run time."""
    frames: dict[str, int] = {}
    dynamic: dict[str, bool] = {}
    owner: dict[str, str] = {}
    calls: dict[str, set[str]] = {}
    for name, callgraph in callgraphs.items():
        for title, label in _NODE.findall(callgraph):
            match = _FRAME.search(label)
            if match is not None:
                frames[title] = int(match.group(1)) or NAKED_FRAME_BYTES
                dynamic[title] = "dynamic" in match.group(2) and "bounded" not in match.group(2)
                owner[title] = name
        for source, target in _EDGE.findall(callgraph):
            calls.setdefault(source, set()).add(target)
    depth: dict[str, tuple[int, bool]] = {}

    def deepest(title: str, path: frozenset[str]) -> tuple[int, bool]:
        if title not in depth:
            below = [deepest(c, path | {title}) for c in calls.get(title, ()) if c not in path]
            depth[title] = (frames.get(title, LIBRARY_CALL_BYTES) + max((b[0] for b in below), default=0),
                            dynamic.get(title, False) or any(b[1] for b in below))
        return depth[title]

    result: dict[str, tuple[int, bool]] = {}
    for title, name in owner.items():
        bytes_, sized_at_run_time = deepest(title, frozenset())
        best = result.get(name, (0, False))
        result[name] = (max(best[0], bytes_), best[1] or sized_at_run_time)
    return result


def measure_kernel_costs(compiler: str = "arm-none-eabi-gcc") -> dict[str, dict[str, int]]:
    """{kernel file stem: {"code_bytes", "stack_bytes", "dynamic_stack"}} for every firmware/engine/*.c
    (dynamic_stack: it may take its scratch on the stack, sized at run time)."""
    size_tool = compiler.replace("gcc", "size")
    root = firmware_dir() / "engine"
    include = ["-I", str(root), "-I", str(firmware_dir() / "include")]
    sizes, callgraphs = {}, {}
    with tempfile.TemporaryDirectory() as work:
        for source in sorted(root.glob("*.c")):
            obj = Path(work) / f"{source.stem}.o"
            subprocess.run([compiler, *COMPILE_FLAGS, *include, "-fcallgraph-info=su", "-c", str(source),
                            "-o", str(obj)], check=True, cwd=work, capture_output=True, text=True)
            text, data = subprocess.run([size_tool, "-B", "-d", str(obj)], check=True, capture_output=True,
                                        text=True).stdout.splitlines()[1].split()[:2]
            sizes[source.stem] = int(text) + int(data)
            callgraphs[source.stem] = (Path(work) / f"{source.stem}.ci").read_text()
    stacks = _deepest_stacks(callgraphs)
    return {name: {"code_bytes": sizes[name], "stack_bytes": stacks.get(name, (0, False))[0],
                   "dynamic_stack": stacks.get(name, (0, False))[1]} for name in sizes}


@lru_cache(maxsize=1)
def kernel_costs() -> dict:
    return tomllib.loads(TABLE.read_text())


def kernels_code_bytes(kernel_sources: list[Path]) -> int:
    """Flash of the kernels a plan uses (an upper bound; a kernel missing from the table counts the largest)."""
    table = kernel_costs()["kernel"]
    largest = max(entry["code_bytes"] for entry in table.values())
    return sum(table.get(path.stem, {}).get("code_bytes", largest) for path in kernel_sources if path.suffix == ".c")


def call_code_bytes(args: int) -> int:
    """An upper bound on one kernel call in td_engine_invoke: a branch, each argument loaded (a literal-pool load
    or movw + add: at most 6 B) and, past the four register arguments, stored on the stack."""
    table = kernel_costs()
    return table["call_code_bytes"] + table["call_code_bytes_per_argument"] * args + \
        table["call_code_bytes_per_stack_argument"] * max(0, args - 4)


def native_code_bytes(kernel_sources: list[Path], call_args: list[int]) -> int:
    """Flash of a native firmware's code on the virtual board's runtime: kernels, protocol, model glue (`call_args`:
    the argument count of each kernel call td_engine_invoke makes)."""
    return kernel_costs()["runtime_code_bytes"] + sum(map(call_code_bytes, call_args)) + \
        kernels_code_bytes(kernel_sources)


def runtime_stack_bytes(call_args: list[int] = ()) -> int:
    """The runtime's frames down to a kernel call: protocol and sketch, then td_engine_invoke's own frame, which
    the generated calls size (it saves up to r4-r11 and lr, and keeps room for arguments past the fourth)."""
    table = kernel_costs()
    stack_args = max((n - 4 for n in call_args), default=0)
    invoke = table["invoke_frame_bytes"] + table["invoke_frame_bytes_per_stack_argument"] * max(0, stack_args)
    return table["runtime_stack_bytes"] + (invoke + 7) // 8 * 8


def kernel_stack_bytes(kernel: str, stack_scratch: int = 0) -> int:
    """The deepest stack of one kernel call, with `stack_scratch` bytes of scratch it takes on its stack when the
    plan has no room for them (counted where the kernel sizes that array at run time; a fixed array is in its
    frame already)."""
    table = kernel_costs()["kernel"]
    entry = table.get(kernel) or max(table.values(), key=lambda e: e["stack_bytes"])
    return entry["stack_bytes"] + (stack_scratch if entry["dynamic_stack"] else 0)


def render_table(costs: dict[str, dict[str, int]]) -> str:
    head = kernel_costs() if TABLE.exists() else {}
    lines = ["# Flash and stack of each native kernel source (firmware/engine/*.c) compiled alone for the Cortex-M4",
             "# (-Os, hard float). Written by `python -m tinydeploy.engine.kernel_costs`; a test checks it is current.",
             "# runtime_*: the native firmware without kernels on the virtual board (protocol, sketch, BSP, model glue),",
             "# measured (flash: firmware - constants - kernels - core: KWS 7,770 B with 13 ops, AD 7,622 B with 10, one",
             "# 1x1 conv 7,756 B; stack: high water - deepest kernel call: KWS 168 B, AD 176 B), rounded up.",
             f"runtime_code_bytes = {head.get('runtime_code_bytes', 0)}",
             f"runtime_stack_bytes = {head.get('runtime_stack_bytes', 0)}",
             "# invoke_*: td_engine_invoke's frame, an upper bound (r4-r11 and lr with padding, then 4 B an argument past the",
             "# fourth; measured 16-48 B, 48 B with five arguments); runtime_stack_bytes is the rest of the runtime's frames.",
             f"invoke_frame_bytes = {head.get('invoke_frame_bytes', 0)}",
             f"invoke_frame_bytes_per_stack_argument = {head.get('invoke_frame_bytes_per_stack_argument', 0)}",
             "# call_*: one kernel call in td_engine_invoke, an upper bound (measured 20-22 B with 4 arguments, 28 B "
             "with 5).",
             f"call_code_bytes = {head.get('call_code_bytes', 0)}",
             f"call_code_bytes_per_argument = {head.get('call_code_bytes_per_argument', 0)}",
             f"call_code_bytes_per_stack_argument = {head.get('call_code_bytes_per_stack_argument', 0)}", ""]
    for name, entry in sorted(costs.items()):
        lines += [f"[kernel.{name}]", f"code_bytes = {entry['code_bytes']}", f"stack_bytes = {entry['stack_bytes']}",
                  f"dynamic_stack = {str(entry['dynamic_stack']).lower()}"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool
    if shutil.which("arm-none-eabi-gcc") is None:
        sys.exit("error: arm-none-eabi-gcc is not installed; install gcc-arm-none-eabi")
    text = render_table(measure_kernel_costs())
    TABLE.write_text(text)
    print(f"wrote {TABLE}")
