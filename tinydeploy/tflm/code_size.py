"""Flash taken by a TFLM firmware's code, and the sketch's static RAM besides the tensor arena, measured on the
virtual board. The fit verdict reads the table this writes (tinydeploy.analysis.fit: tflm_code_bytes,
tflm_sketch_ram_bytes).

How: each model of a set covering many ops is built for the virtual board the way `flash` builds it
(tinydeploy.flow.build_firmware, engine "tflm", the local library given) and linked with a map file. Every linked
object's flash (its kept input sections) is read from the map; which objects an op needs comes from the symbols
the objects define and use (nm): an op owns the objects its registration (tflite::Register_<OP>) reaches that the
rest of the firmware (sketch, protocol, board support, interpreter) does not. Objects one op alone reaches make its
figure; objects several ops reach form a shared group, counted once when a model has any of them; each object at
its largest over the models (an upper bound: the linker keeps fewer of a shared object's functions for fewer ops).
The runtime is the rest: measured code (flash - model - the board's core figure) - the ops' figures, fitted as
base + per op (resolver entries and flatbuffer parsers grow with the ops) and raised until it covers every model.
The sketch's static RAM (interpreter, resolver, protocol buffers) is static RAM - arena - core, fitted the same
way. The builds are tinydeploy.hil.tflm_code_size's (this module reads their map files and writes the table); re-run
with a local library after changing the library, the TFLM sketch or the protocol:

    python -m tinydeploy.hil.tflm_code_size /path/to/Arduino_TensorFlowLite   # rewrites tflm_code_size.toml
    python -m tinydeploy.hil.tflm_code_size LIBRARY some.tflite --print        # one model, the table printed
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from dataclasses import dataclass, field
from pathlib import Path


ROUND_BYTES = 64
_REGISTER = re.compile(r"^_ZN6tflite(?:3ops5micro)?\d+Register_([A-Z0-9_]+)Ev$")
_NM_LINE = re.compile(r"^(.*?):([^:]+):\s*([0-9a-fA-F]*)\s+([A-Za-z])\s+(\S+)$")
_NM_OBJECT_LINE = re.compile(r"^(.*?):\s*([0-9a-fA-F]*)\s+([A-Za-z])\s+(\S+)$")
_INPUT_SECTION = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*(.*)$")
_CONTINUED = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_NOT_LOADED = re.compile(r"^\.(debug|comment|ARM\.attributes|stack_reserve|heap)")
RAM_START = 0x2000_0000


@dataclass
class LinkedFile:
    flash: int = 0  # text, rodata and data's initial values
    ram: int = 0    # data and bss
    sections: set[str] = field(default_factory=set)  # the names of its kept input sections


def parse_map(text: str) -> dict[str, LinkedFile]:
    """Per linked file ("archive(member)" or an object path): its flash and static RAM, from a GNU ld map file."""
    files: dict[str, LinkedFile] = {}
    rows: list[tuple[bool, int, int, str, str]] = []
    body = text.split("\nLinker script and memory map", 1)[-1]
    loaded = in_ram = False
    output_pending = False  # an output section's name on a line of its own: its address follows
    input_pending: str | None = None  # the same for an input section
    for line in body.splitlines():
        if line.startswith("."):
            name = line.split()[0]
            loaded = not _NOT_LOADED.match(name)
            fields = line.split()
            output_pending = len(fields) == 1
            in_ram = len(fields) > 1 and int(fields[1], 16) >= RAM_START
            input_pending = None
            continue
        if output_pending:
            fields = line.split()
            if fields and fields[0].startswith("0x"):
                in_ram = int(fields[0], 16) >= RAM_START
            output_pending = False
            continue
        if not loaded:
            continue
        match = _INPUT_SECTION.match(line)
        if match:
            name, size, owner = match.group(1), int(match.group(3), 16), match.group(4).strip()
        elif input_pending is not None and (cont := _CONTINUED.match(line)):
            name, size, owner = input_pending, int(cont.group(2), 16), cont.group(3).strip()
        else:
            input_pending = line.strip() if re.match(r"^ [.A-Za-z*]\S*$", line) and "(" not in line else None
            continue
        input_pending = None
        if size:
            rows.append((in_ram, int(match.group(2) if match else cont.group(1), 16), size, name, owner or "*fill*"))
            files.setdefault(owner or "*fill*", LinkedFile()).sections.add(name)
    # merged string sections overlap (the map gives each its size before merging): count every byte once
    covered = 0
    for in_ram, address, size, name, owner in sorted(rows, key=lambda r: (r[1], -r[2])):
        size, covered = max(0, address + size - max(address, covered)), max(covered, address + size)
        entry = files.setdefault(owner, LinkedFile())
        if in_ram:
            entry.ram += size
            if not (name.startswith(".bss") or name == "COMMON" or name.startswith(".noinit")):
                entry.flash += size  # .data's initial values are in flash too
        else:
            entry.flash += size
    return files


def _member(owner: str) -> tuple[str, str] | None:
    """("archive", "member") of "archive(member)", None for a plain object."""
    match = re.match(r"^(.*\.a)\((.+)\)$", owner)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class SymbolTable:
    defines: dict[str, set[str]] = field(default_factory=dict)  # file -> symbols it defines
    uses: dict[str, set[str]] = field(default_factory=dict)     # file -> symbols it leaves undefined


def read_symbols(owners: list[str], project_dir: Path, nm: str = "arm-none-eabi-nm") -> SymbolTable:
    table = SymbolTable()
    archives = sorted({m[0] for o in owners if (m := _member(o))})
    objects = [o for o in owners if _member(o) is None and o != "*fill*"]
    for archive in archives:
        out = subprocess.run([nm, "-A", archive], capture_output=True, text=True, cwd=project_dir).stdout
        for line in out.splitlines():
            match = _NM_LINE.match(line)
            if match:
                _add_symbol(table, f"{match.group(1)}({match.group(2)})", match.group(4), match.group(5))
    for obj in objects:
        out = subprocess.run([nm, "-A", obj], capture_output=True, text=True, cwd=project_dir).stdout
        for line in out.splitlines():
            match = _NM_OBJECT_LINE.match(line)
            if match:
                _add_symbol(table, obj, match.group(3), match.group(4))
    return table


def _add_symbol(table: SymbolTable, owner: str, kind: str, symbol: str) -> None:
    if kind in ("U", "w", "v"):  # undefined (w, v: weak undefined)
        table.uses.setdefault(owner, set()).add(symbol)
    elif kind.isupper():  # a global definition (a local one resolves nothing outside its object)
        table.defines.setdefault(owner, set()).add(symbol)


@dataclass
class FirmwareCode:
    """One measured firmware: its code (flash - model - board core) and each of its ops' own objects' flash."""

    model: str
    ops: list[str]
    code_bytes: int
    objects: dict[str, tuple[int, set[str]]]  # the objects only ops reach: (flash, the ops that reach it)
    sketch_ram_bytes: int = 0  # static RAM - tensor arena - the board's core figure (interpreter, resolver, protocol)


def attribute(files: dict[str, LinkedFile], symbols: SymbolTable, ops: list[str]) -> dict[str, tuple[int, set[str]]]:
    """{object: (its flash, the ops that reach it)} for the objects only ops reach. The runtime's objects: every
    linked file that is not a member of a library archive (the TFLM library, the toolchain's C/C++/math libraries)
    and what those use."""
    linked = {o for o in files if o != "*fill*"}
    # a symbol several objects define (an inline function, a template, a vtable: weak, one copy kept) resolves
    # to the object whose section of it the linker kept
    kept = {section.rsplit(".", 1)[-1]: owner for owner in linked for section in files[owner].sections}
    definer: dict[str, str] = {}
    for owner in sorted(linked):
        for symbol in symbols.defines.get(owner, ()):
            definer.setdefault(symbol, owner)
    for symbol in definer:
        if kept.get(symbol) is not None and symbol in symbols.defines.get(kept[symbol], ()):
            definer[symbol] = kept[symbol]

    def reach(starts: set[str], known: frozenset[str] = frozenset()) -> set[str]:
        """The objects `starts` use, directly or not, short of `known`; another op's registration is not
        followed (the sketch's resolver is what reaches each op)."""
        seen, stack = set(starts), list(starts)
        while stack:
            for symbol in symbols.uses.get(stack.pop(), ()):
                target = definer.get(symbol)
                if _REGISTER.match(symbol) or target is None or target in seen or target in known:
                    continue
                seen.add(target)
                stack.append(target)
        return seen

    def is_library(owner: str) -> bool:
        member = _member(owner)
        return member is not None and not member[0].startswith(".pio")

    runtime = frozenset(reach({o for o in linked if not is_library(o)}))
    registered = {m.group(1): owner for owner in linked for s in symbols.defines.get(owner, ())
                  if (m := _REGISTER.match(s))}
    owned: dict[str, tuple[int, set[str]]] = {}
    for op in ops:
        root = registered.get(op)
        if root is None:
            raise RuntimeError(f"no linked object registers {op} (tflite::Register_{op})")
        for obj in reach({root}, runtime):
            owned.setdefault(_short(obj), (files[obj].flash, set()))[1].add(op)
    return owned


def _short(owner: str) -> str:
    member = _member(owner)
    return f"{Path(member[0]).name}({member[1]})" if member else owner


@dataclass
class CodeTable:
    runtime_bytes: int
    runtime_bytes_per_op: int
    op_bytes: dict[str, int]
    shared: list[tuple[list[str], int, list[str]]]  # (ops, bytes, objects) of objects several ops reach
    default_op_bytes: int
    sketch_ram_bytes: int = 0
    sketch_ram_bytes_per_op: int = 0

    def estimate(self, ops: list[str]) -> int:
        """The same sum as tinydeploy.analysis.fit.tflm_code_bytes (a test checks they agree)."""
        distinct = set(ops)
        return self.runtime_bytes + self.runtime_bytes_per_op * len(distinct) + \
            sum(self.op_bytes.get(op, self.default_op_bytes) for op in distinct) + \
            sum(nbytes for group, nbytes, _ in self.shared if distinct & set(group))


def build_table(measured: list[FirmwareCode]) -> CodeTable:
    """Objects one op alone reaches make its figure; objects several ops reach form shared groups (counted once
    when the model has any of those ops); each object at its largest over the models. The runtime is the rest,
    fitted as base + per op (the resolver and the flatbuffer parser grow with the ops) and raised until it covers
    every model measured."""
    sizes: dict[str, int] = {}
    reachers: dict[str, set[str]] = {}
    for fw in measured:
        for obj, (nbytes, ops) in fw.objects.items():
            sizes[obj] = max(sizes.get(obj, 0), nbytes)
            reachers.setdefault(obj, set()).update(ops)
    op_bytes: dict[str, int] = {op: 0 for fw in measured for op in fw.ops}
    groups: dict[tuple[str, ...], list[str]] = {}
    for obj, ops in reachers.items():
        if len(ops) == 1:
            op_bytes[next(iter(ops))] += sizes[obj]
        else:
            groups.setdefault(tuple(sorted(ops)), []).append(obj)
    op_bytes = {op: _round_up(n) for op, n in op_bytes.items()}
    shared = sorted(([list(key), _round_up(sum(sizes[o] for o in objs)), sorted(objs)]
                     for key, objs in groups.items()), key=lambda g: (-g[1], g[0]))
    table = CodeTable(0, 0, op_bytes, [tuple(g) for g in shared], 0)
    rest = [(len(set(fw.ops)), fw.code_bytes - table.estimate(fw.ops)) for fw in measured]
    table.runtime_bytes_per_op = _slope(rest)
    table.runtime_bytes = _round_up(max(r - table.runtime_bytes_per_op * n for n, r in rest))
    ram = [(len(set(fw.ops)), fw.sketch_ram_bytes) for fw in measured]
    table.sketch_ram_bytes_per_op = _slope(ram)
    table.sketch_ram_bytes = _round_up(max(r - table.sketch_ram_bytes_per_op * n for n, r in ram), 16)
    table.default_op_bytes = max(op_bytes[op] + sum(n for group, n, _ in table.shared if op in group)
                                 for op in op_bytes)
    return table


def _slope(points: list[tuple[int, int]]) -> int:
    """Least-squares slope of y over x, rounded up to 8 B and never below 0."""
    if len({x for x, _ in points}) < 2:
        return 0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sum((x - mean_x) ** 2 for x, _ in points)
    return max(0, -(-int(slope) // 8) * 8)


def _round_up(n: int, step: int = ROUND_BYTES) -> int:
    return -(-n // step) * step


def render_table(measured: list[FirmwareCode], table: CodeTable) -> str:
    lines = [
        "# Flash of a TFLM firmware's code on a Cortex-M4 (Arduino TFLM library 7948b85 with CMSIS-NN, -Os), measured",
        "# on the virtual board by `python -m tinydeploy.hil.tflm_code_size LIBRARY` (tinydeploy/tflm/code_size.py:",
        "# each model built as `flash` builds it and linked with a map file; the objects an op's registration alone",
        "# reaches make its figure, objects several ops reach a shared group counted once; the largest over the",
        "# models). Estimate = runtime_bytes + runtime_bytes_per_op x ops + each op's figure (default_op_bytes if not",
        "# measured: the largest op with its shared groups) + every shared group one of the ops is in.",
        "# runtime: interpreter, allocator, flatbuffer reader, resolver, protocol, sketch, board support beyond the",
        "# board's core figure, C/C++ runtime. Measured code (flash - model - core) -> this table's estimate:",
    ]
    for fw in measured:
        lines.append(f"#   {fw.model}: {fw.code_bytes:,} B -> {table.estimate(fw.ops):,} B ({len(set(fw.ops))} ops)")
    lines += [f"runtime_bytes = {table.runtime_bytes}", f"runtime_bytes_per_op = {table.runtime_bytes_per_op}",
              f"default_op_bytes = {table.default_op_bytes}",
              "# The sketch's static RAM beyond the tensor arena and the board's core figure (interpreter, resolver,",
              "# protocol buffers): firmware static RAM - arena - core, fitted as base + per op and raised to cover",
              "# every model:", *(f"#   {fw.model}: {fw.sketch_ram_bytes:,} B ({len(set(fw.ops))} ops)" for fw in measured),
              f"sketch_ram_bytes = {table.sketch_ram_bytes}",
              f"sketch_ram_bytes_per_op = {table.sketch_ram_bytes_per_op}", "", "[op_bytes]"]
    lines += [f"{op} = {n}" for op, n in sorted(table.op_bytes.items())]
    for ops, nbytes, objects in table.shared:
        lines += ["", "[[shared]]", *textwrap.wrap(", ".join(objects), 116, initial_indent="# ",
                                                    subsequent_indent="# "),
                  f"ops = {json.dumps(ops)}", f"bytes = {nbytes}"]
    return "\n".join(lines) + "\n"
