"""The TFLM engine's measured code and RAM table (tinydeploy/analysis/tflm_code_size.toml, written by
`python -m tinydeploy.hil.tflm_code_size`): well-formed, covering every op the resolver registers (measured or the
safe default), and read the same way by the fit verdict and the tool that wrote it. The map-file parser and the
per-op attribution are checked on small hand-written inputs (unit tests of one function each, as named)."""

from __future__ import annotations

import tomllib

from tinydeploy.analysis.fit import TFLM_CODE_TABLE, tflm_code_bytes, tflm_sketch_ram_bytes
from tinydeploy.tflm.code_size import CodeTable, LinkedFile, attribute, parse_map
from tinydeploy.tflm.resolver import TFLM_OP_METHODS


def _table() -> dict:
    return tomllib.loads(TFLM_CODE_TABLE.read_text())


def test_tflm_code_table_is_well_formed_and_names_only_ops_the_resolver_registers():
    table = _table()
    assert table["runtime_bytes"] > 20_000 and table["runtime_bytes_per_op"] >= 0
    assert table["sketch_ram_bytes"] > 0 and table["sketch_ram_bytes_per_op"] >= 0
    ops = table["op_bytes"]
    assert len(ops) >= 10 and all(isinstance(n, int) and n > 0 for n in ops.values())
    assert set(ops) <= set(TFLM_OP_METHODS), set(ops) - set(TFLM_OP_METHODS)
    for group in table.get("shared", []):
        assert len(group["ops"]) >= 2 and set(group["ops"]) <= set(ops) and group["bytes"] > 0
    # the default (an op not measured) is no less than any measured op with the code it shares with others
    shared_of = {op: sum(g["bytes"] for g in table.get("shared", []) if op in g["ops"]) for op in ops}
    assert table["default_op_bytes"] >= max(ops[op] + shared_of[op] for op in ops)


def test_every_op_the_resolver_registers_has_a_measured_or_the_default_code_figure():
    table = _table()
    runtime = table["runtime_bytes"] + table["runtime_bytes_per_op"]
    for op in TFLM_OP_METHODS:
        alone = tflm_code_bytes([op])
        if op in table["op_bytes"]:
            assert alone >= runtime + table["op_bytes"][op], op
        else:
            assert alone == runtime + table["default_op_bytes"], op
    assert tflm_code_bytes(["CONV_2D", "CONV_2D"]) == tflm_code_bytes(["CONV_2D"])  # distinct ops count
    assert tflm_sketch_ram_bytes(["ADD", "SUB"]) == table["sketch_ram_bytes"] + 2 * table["sketch_ram_bytes_per_op"]


def test_the_fit_verdict_reads_the_table_as_the_measuring_tool_sums_it():
    table = _table()
    code = CodeTable(table["runtime_bytes"], table["runtime_bytes_per_op"], table["op_bytes"],
                     [(g["ops"], g["bytes"], []) for g in table.get("shared", [])], table["default_op_bytes"])
    for ops in (["FULLY_CONNECTED"], ["CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE",
                                      "FULLY_CONNECTED", "SOFTMAX"], ["ADD", "SVDF", "NOT_AN_OP_ANYONE_MEASURED"]):
        assert code.estimate(ops) == tflm_code_bytes(ops)


MAP_TEXT = """Archive member included to satisfy reference by file (symbol)

Linker script and memory map

.text           0x00000000      0x130
 *(.vectors)
 .vectors       0x00000000       0x40 startup.o
 .text.main     0x00000040       0x20 main.o
 .text._ZN6tflite16Register_CONV_2DEv
                0x00000060       0x30 /lib/libtflm.a(conv.cpp.o)
                0x00000060                tflite::Register_CONV_2D()
 *fill*         0x00000090        0x4 
 .rodata.a.str1.1
                0x00000094       0x50 /lib/libtflm.a(conv.cpp.o)
 .rodata.b.str1.1
                0x00000094       0x20 main.o
 .text.helper   0x000000e4       0x4c /lib/libtflm.a(util.o)

.data           0x20000000       0x10 load address 0x00000130
 .data.x        0x20000000       0x10 main.o

.bss            0x20000010      0x100 load address 0x00000140
 .bss.arena     0x20000010      0x100 main.o

.debug_info     0x00000000     0x1000
 .debug_info    0x00000000     0x1000 main.o
"""


def test_parse_map_counts_each_linked_byte_once_unit():
    """Merged string sections overlap in a map (each is listed at its size before merging): counted once."""
    files = parse_map(MAP_TEXT)
    assert sum(f.flash for f in files.values()) == 0x130 + 0x10  # .text + .data's initial values
    assert files["/lib/libtflm.a(conv.cpp.o)"].flash == 0x30 + 0x50
    assert files["/lib/libtflm.a(conv.cpp.o)"].sections == {".text._ZN6tflite16Register_CONV_2DEv": 0x30,
                                                           ".rodata.a.str1.1": 0x50}
    assert files["main.o"].flash == 0x20 + 0x10 and files["main.o"].ram == 0x110
    assert "*fill*" in files and all(f.ram == 0 for name, f in files.items() if name != "main.o")


OBJDUMP_TEXT = """In archive /l/libtflm.a:

conv.o:     file format elf32-littlearm

SYMBOL TABLE:
00000000 l    d  .text.eval\t00000000 .text.eval
00000000 l     F .text.eval\t00000010 _ZN12_GLOBAL__N_14EvalEv
00000000 g     F .text._ZN6tflite16Register_CONV_2DEv\t00000024 _ZN6tflite16Register_CONV_2DEv
00000000         *UND*\t00000000 matmul


RELOCATION RECORDS FOR [.text._ZN6tflite16Register_CONV_2DEv]:
OFFSET   TYPE              VALUE
00000004 R_ARM_ABS32       _ZN12_GLOBAL__N_14EvalEv


RELOCATION RECORDS FOR [.text.eval]:
OFFSET   TYPE              VALUE
00000002 R_ARM_THM_CALL    matmul
00000008 R_ARM_ABS32       .rodata.table

fc.o:     file format elf32-littlearm

SYMBOL TABLE:
00000000 g     F .text._ZN6tflite24Register_FULLY_CONNECTEDEv\t00000024 _ZN6tflite24Register_FULLY_CONNECTEDEv


RELOCATION RECORDS FOR [.text._ZN6tflite24Register_FULLY_CONNECTEDEv]:
OFFSET   TYPE              VALUE
00000002 R_ARM_THM_CALL    matmul
00000004 R_ARM_THM_CALL    util

matmul.o:     file format elf32-littlearm

SYMBOL TABLE:
00000000 g     F .text.matmul\t00000040 matmul
00000000 g     F .text.unused\t00000040 unused

util.o:     file format elf32-littlearm

SYMBOL TABLE:
00000000 g     F .text.util\t00000008 util
"""


def test_attribute_gives_an_op_only_the_sections_the_rest_of_the_firmware_does_not_reach_unit():
    """Sections reached through relocations from an op's registration, short of the runtime's (main.o reaches
    util and the registrations, which are not followed); a section shared by two ops is reported with both."""
    from tinydeploy.tflm.code_size import ObjectSymbols, parse_objdump

    objects: dict = {}
    parse_objdump(OBJDUMP_TEXT, "/l/libtflm.a", True, objects)
    objects["main.o"] = ObjectSymbols(relocations={".text.main": {"_ZN6tflite16Register_CONV_2DEv", "util",
                                                                  "_ZN6tflite24Register_FULLY_CONNECTEDEv"}})
    conv, fc, matmul, util = (f"/l/libtflm.a({name}.o)" for name in ("conv", "fc", "matmul", "util"))
    files = {"main.o": LinkedFile(100, 0, {".text.main": 100}),
             conv: LinkedFile(40, 0, {".text._ZN6tflite16Register_CONV_2DEv": 24, ".text.eval": 16}),
             fc: LinkedFile(20, 0, {".text._ZN6tflite24Register_FULLY_CONNECTEDEv": 20}),
             matmul: LinkedFile(64, 0, {".text.matmul": 64}), util: LinkedFile(8, 0, {".text.util": 8})}
    owned = attribute(files, objects, ["CONV_2D", "FULLY_CONNECTED"])
    assert owned == {"libtflm.a(conv.o):.text._ZN6tflite16Register_CONV_2DEv": (24, {"CONV_2D"}),
                     "libtflm.a(conv.o):.text.eval": (16, {"CONV_2D"}),
                     "libtflm.a(fc.o):.text._ZN6tflite24Register_FULLY_CONNECTEDEv": (20, {"FULLY_CONNECTED"}),
                     "libtflm.a(matmul.o):.text.matmul": (64, {"CONV_2D", "FULLY_CONNECTED"})}
