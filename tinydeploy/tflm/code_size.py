"""Flash taken by a TFLM firmware's code, and the sketch's static RAM besides the tensor arena, measured on the
virtual board. The fit verdict reads the table this writes (tinydeploy.analysis.fit: tflm_code_bytes,
tflm_sketch_ram_bytes).

How: each model of a set covering many ops is built for the virtual board the way `flash` builds it
(tinydeploy.flow.build_firmware, engine "tflm", the local library given) and linked with a map file. The flash of
every kept input section is read from the map; which sections an op needs comes from the objects' symbols and
relocations (objdump -rt): an op owns the sections its registration (tflite::Register_<OP>) reaches that the rest
of the firmware (sketch, protocol, board support, interpreter, and what they reach) does not. Sections one op alone
reaches make its figure; sections several ops reach form a shared group, counted once when a model has any of
those ops; each section at its largest over the models. The runtime is the rest: measured code (flash - model -
the board's core figure) - the ops' figures, as base + per op (the sketch's resolver reaches each op's flatbuffer
parser: the largest parser bytes per op measured) covering every model measured.
The sketch's static RAM beyond the arena and the core figure (interpreter and resolver objects) is static RAM -
arena - core, fitted as base + per op. The builds are tinydeploy.hil.tflm_code_size's (this module reads their
map files and writes the table); re-run with a local library after changing the library, the TFLM sketch or the
protocol:

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
_FILE = re.compile(r"^(.+?):\s+file format ")
_SYMBOL = re.compile(r"^[0-9a-f]{8} (.{7}) (\S+)\t[0-9a-f]{8} (.*)$")
_RELOCATIONS = re.compile(r"^RELOCATION RECORDS FOR \[(.+)\]:$")
_RELOCATION = re.compile(r"^[0-9a-f]{8} \S+\s+(\S+)$")
_INPUT_SECTION = re.compile(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s*(.*)$")
_CONTINUED = re.compile(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
_NOT_LOADED = re.compile(r"^\.(debug|comment|ARM\.attributes|stack_reserve|heap)")
RAM_START = 0x2000_0000


@dataclass
class LinkedFile:
    flash: int = 0  # text, rodata and data's initial values
    ram: int = 0    # data and bss
    sections: dict[str, int] = field(default_factory=dict)  # its kept input sections' flash, by name


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
    # merged string sections overlap (the map gives each its size before merging): count every byte once
    covered = 0
    for in_ram, address, size, name, owner in sorted(rows, key=lambda r: (r[1], -r[2])):
        size, covered = max(0, address + size - max(address, covered)), max(covered, address + size)
        entry = files.setdefault(owner, LinkedFile())
        flash = size
        if in_ram:
            entry.ram += size
            if name.startswith(".bss") or name == "COMMON" or name.startswith(".noinit"):
                flash = 0  # .data's initial values are in flash too, .bss is not
        entry.flash += flash
        entry.sections[name] = entry.sections.get(name, 0) + flash
    return files


def _member(owner: str) -> tuple[str, str] | None:
    """("archive", "member") of "archive(member)", None for a plain object."""
    match = re.match(r"^(.*\.a)\((.+)\)$", owner)
    return (match.group(1), match.group(2)) if match else None


@dataclass
class ObjectSymbols:
    """What one linked object (or archive member) defines and where its sections point (objdump -rt)."""

    globals: dict[str, str] = field(default_factory=dict)  # global or weak symbol -> its section
    locals: dict[str, str] = field(default_factory=dict)   # local symbol -> its section
    relocations: dict[str, set[str]] = field(default_factory=dict)  # section -> symbols or sections it refers to


def read_objects(owners: list[str], project_dir: Path, objdump: str = "arm-none-eabi-objdump") \
        -> dict[str, ObjectSymbols]:
    """ObjectSymbols of every linked file ("archive(member)" or an object path relative to the project)."""
    result: dict[str, ObjectSymbols] = {}
    archives = sorted({m[0] for o in owners if (m := _member(o))})
    objects = [o for o in owners if _member(o) is None and o != "*fill*"]
    for path, is_archive in [(a, True) for a in archives] + [(o, False) for o in objects]:
        out = subprocess.run([objdump, "-rt", path], capture_output=True, text=True, cwd=project_dir,
                             check=True).stdout
        parse_objdump(out, path, is_archive, result)
    return result


def parse_objdump(text: str, path: str, is_archive: bool, result: dict[str, ObjectSymbols]) -> None:
    entry: ObjectSymbols | None = None
    section: str | None = None
    for line in text.splitlines():
        if (match := _FILE.match(line)) is not None:
            owner = f"{path}({match.group(1)})" if is_archive else path
            entry, section = result.setdefault(owner, ObjectSymbols()), None
        elif entry is None:
            continue
        elif (match := _RELOCATIONS.match(line)) is not None:
            section = match.group(1)
        elif section is not None:
            if (match := _RELOCATION.match(line)) is not None:
                entry.relocations.setdefault(section, set()).add(re.sub(r"[+-]0x[0-9a-f]+$", "", match.group(1)))
        elif (match := _SYMBOL.match(line)) is not None:
            flags, where, name = match.group(1), match.group(2), match.group(3).split()[-1]
            if where in ("*UND*", "*ABS*", "*COM*"):
                continue
            if flags[0] in "gu" or flags[1] == "w":
                entry.globals.setdefault(name, where)
            else:
                entry.locals[name] = where


def attribute(files: dict[str, LinkedFile], objects: dict[str, ObjectSymbols], ops: list[str]) \
        -> dict[str, tuple[int, set[str]]]:
    """{"object:section": (its flash, the ops that reach it)} for the kept sections only ops reach: the sections
    an op's registration reaches through relocations, short of what the runtime reaches (every section of the
    files that are not library archive members: sketch, protocol, board support, and what they use). Another op's
    registration is not followed (the sketch's resolver is what reaches each op)."""
    linked = {o for o in files if o != "*fill*"}
    empty = ObjectSymbols()
    # a symbol several objects define (weak: inline functions, templates, vtables) resolves to the kept copy
    definer: dict[str, tuple[str, str]] = {}
    for owner in sorted(linked):
        for symbol, where in objects.get(owner, empty).globals.items():
            if where in files[owner].sections:
                definer.setdefault(symbol, (owner, where))

    def targets(node: tuple[str, str]):
        owner, where = node
        symbols = objects.get(owner, empty)
        for value in symbols.relocations.get(where, ()):
            if _REGISTER.match(value):
                continue
            if value in symbols.locals:
                target = (owner, symbols.locals[value])
            elif value in definer:
                target = definer[value]
            else:
                target = (owner, value)  # a section of its own, by name
            if target[1] in files[target[0]].sections:
                yield target

    def reach(starts: set[tuple[str, str]], known: frozenset = frozenset()) -> set[tuple[str, str]]:
        seen, stack = set(starts), list(starts)
        while stack:
            for target in targets(stack.pop()):
                if target not in seen and target not in known:
                    seen.add(target)
                    stack.append(target)
        return seen

    def is_library(owner: str) -> bool:
        member = _member(owner)
        return member is not None and not member[0].startswith(".pio")

    runtime = frozenset(reach({(o, s) for o in linked if not is_library(o) for s in files[o].sections}))
    registered = {m.group(1): node for symbol, node in definer.items() if (m := _REGISTER.match(symbol))}
    owned: dict[str, tuple[int, set[str]]] = {}
    for op in ops:
        if op not in registered:
            raise RuntimeError(f"no linked object registers {op} (tflite::Register_{op})")
        for owner, where in reach({registered[op]}, runtime):
            owned.setdefault(f"{_short(owner)}:{where}", (files[owner].sections[where], set()))[1].add(op)
    return owned


def parser_bytes(files: dict[str, LinkedFile]) -> int:
    """Flash of the flatbuffer parsers of the model's ops (tflite::Parse*: the sketch's resolver reaches one per op,
    so the runtime grows with the ops by about this much)."""
    return sum(n for owner, f in files.items() if owner.endswith("(flatbuffer_conversions.cpp.o)")
               for name, n in f.sections.items() if re.match(r"^\.text\._ZN6tflite\d+Parse", name))


def _short(owner: str) -> str:
    member = _member(owner)
    return f"{Path(member[0]).name}({member[1]})" if member else owner


@dataclass
class FirmwareCode:
    """One measured firmware: its code (flash - model - board core) and the sections only its ops reach."""

    model: str
    ops: list[str]
    code_bytes: int
    objects: dict[str, tuple[int, set[str]]]  # "object:section" -> (flash, the ops that reach it)
    sketch_ram_bytes: int = 0  # static RAM - tensor arena - the board's core figure (interpreter, resolver, protocol)
    parser_bytes: int = 0  # flash of the ops' flatbuffer parsers (in the runtime; one per op)


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
    """Sections one op alone reaches make its figure; sections several ops reach form shared groups (counted once
    when the model has any of those ops); each section at its largest over the models. The runtime is the rest:
    base + per op (the largest flatbuffer parser per op measured) covering every model measured."""
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
    shared = sorted(([list(key), _round_up(sum(sizes[o] for o in objs)), sorted({o.split(":")[0] for o in objs})]
                     for key, objs in groups.items()), key=lambda g: (-g[1], g[0]))
    table = CodeTable(0, 0, op_bytes, [tuple(g) for g in shared], 0)
    table.runtime_bytes_per_op = max(-(-fw.parser_bytes // len(set(fw.ops)) // 8) * 8 for fw in measured)
    table.runtime_bytes = _round_up(max(fw.code_bytes - table.estimate(fw.ops) for fw in measured))
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
        "# on the virtual board by `python -m tinydeploy.hil.tflm_code_size LIBRARY` (tinydeploy/tflm/code_size.py):",
        "# each model built as `flash` builds it, linked with a map file; the kept sections an op's registration",
        "# reaches (relocations) and the rest of the firmware does not make its figure, sections several ops reach a",
        "# shared group counted once; each at its largest over the models. Estimate = runtime_bytes +",
        "# runtime_bytes_per_op x ops (the ops' flatbuffer parsers) + each op's figure (default_op_bytes if not",
        "# measured: the largest op with its shared groups) + every shared group one of the ops is in.",
        "# runtime: interpreter, allocator, flatbuffer reader, resolver, protocol, sketch, board support beyond the",
        "# board's core figure, C/C++ runtime. Measured code (flash - model - core) -> this table's estimate:",
    ]
    for fw in measured:
        lines.append(f"#   {fw.model}: {fw.code_bytes:,} B -> {table.estimate(fw.ops):,} B ({len(set(fw.ops))} ops)")
    lines += [f"runtime_bytes = {table.runtime_bytes}", f"runtime_bytes_per_op = {table.runtime_bytes_per_op}",
              f"default_op_bytes = {table.default_op_bytes}",
              "# The sketch's static RAM beyond the tensor arena and the board's core figure (interpreter and resolver",
              "# objects): firmware static RAM - arena - core, fitted as base + per op and raised to cover",
              "# every model:",
              *(f"#   {fw.model}: {fw.sketch_ram_bytes:,} B ({len(set(fw.ops))} ops)" for fw in measured),
              f"sketch_ram_bytes = {table.sketch_ram_bytes}",
              f"sketch_ram_bytes_per_op = {table.sketch_ram_bytes_per_op}", "", "[op_bytes]"]
    lines += [f"{op} = {n}" for op, n in sorted(table.op_bytes.items())]
    for ops, nbytes, objects in table.shared:
        lines += ["", "[[shared]]", *textwrap.wrap(", ".join(objects), 116, initial_indent="# ",
                                                    subsequent_indent="# "),
                  f"ops = {json.dumps(ops)}", f"bytes = {nbytes}"]
    return "\n".join(lines) + "\n"
