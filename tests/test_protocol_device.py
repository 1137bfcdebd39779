"""The device side of the protocol (firmware/protocol) built for the host, driven by DeviceLink through a real
pseudo-terminal and pyserial; the same sources built for Cortex-M4; the sketch template compiled."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import tty
import zlib
from contextlib import contextmanager
from pathlib import Path

import jinja2
import pytest
import serial

from tinydeploy.emit.cstrings import c_string_literal
from tinydeploy.errors import TinydeployError
from tinydeploy.link import DeviceLink, parse_reply
from tinydeploy.link.framing import NoiseLine, CorruptLine, frame
from tinydeploy.paths import firmware_dir, templates_dir

HOSTDEVICE = Path(__file__).resolve().parent / "hostdevice"
PROTOCOL_SOURCES = sorted((firmware_dir() / "protocol").glob("*.c"))
INCLUDES = ["-I", str(firmware_dir() / "include"), "-I", str(firmware_dir() / "protocol")]
CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
STRICT = ["-Wall", "-Wextra", "-Werror"]
TOY_INPUT_BYTES = 300
TOY_SECOND_BYTES = 5  # the toy engine's second input and output


def _compile(command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)}\n{result.stderr}")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-packages)")
    return path


@pytest.fixture(scope="session")
def host_device_binary(tmp_path_factory) -> Path:
    binary = tmp_path_factory.mktemp("hostdevice") / "td_hostdevice"
    _compile([_tool("gcc"), "-std=c99", "-pedantic", *STRICT, "-O2", *INCLUDES, *map(str, PROTOCOL_SOURCES),
              str(HOSTDEVICE / "main.c"), str(HOSTDEVICE / "toy_engine.c"), "-o", str(binary)])
    return binary


@contextmanager
def spawned_device(binary: Path, *args: str, open_port=DeviceLink):
    """The device program on the master side of a pty; its slave is a serial port like any other. The port is
    opened before the program starts (opening flushes what arrived earlier), and the open port is yielded."""
    master, slave = os.openpty()
    tty.setraw(slave)  # no echo or line editing before pyserial configures the port
    try:
        with open_port(os.ttyname(slave)) as port:
            process = subprocess.Popen([str(binary), *args], stdin=master, stdout=master, close_fds=True)
            try:
                yield port
            finally:
                process.kill()
                process.wait()
    finally:
        os.close(master)
        os.close(slave)


def _serial_port(path: str) -> serial.Serial:
    return serial.serial_for_url(path, timeout=5)


@pytest.fixture
def link(host_device_binary):
    with spawned_device(host_device_binary) as device_link:
        device_link.timeout = 5
        device_link.wait_ready(timeout=5, probe_every=30)  # no probe: the `ready` line itself must be seen
        yield device_link


def test_identify_reports_escaped_identity_and_sizes(link):
    info = link.identify()
    assert (info.board, info.engine, info.model) == ("hostpc", "toy", 'toy "model" *=% \u2603')
    assert (info.model_hash, info.build_id, info.protocol) == ("0123456789abcdef", "test-build", 2)
    assert [(t.bytes, t.dtype) for t in info.inputs] == [(TOY_INPUT_BYTES, "int8"), (TOY_SECOND_BYTES, "uint8")]
    assert [(t.bytes, t.dtype) for t in info.outputs] == [(TOY_INPUT_BYTES, "int8"), (TOY_SECOND_BYTES, "int16")]
    assert (info.input_bytes, info.output_bytes, info.engine_status) == (TOY_INPUT_BYTES, TOY_INPUT_BYTES, 0)
    # the boot noise was skipped, the fake `ready` with a bad checksum rejected, not trusted
    assert any(b"boot: host device" in line for line in link.noise)
    assert link.corrupt_lines == 1


def test_every_input_loads_and_every_output_reads_by_index(link):
    data = bytes((i * 37 + 11) % 256 for i in range(TOY_INPUT_BYTES))
    second = bytes([0, 1, 127, 200, 255])
    assert link.infer([data, second]) == [data[::-1], bytes((b + 1) % 256 for b in second)]
    # a run consumes the inputs (the engine overwrote them): the next run needs them loaded again
    assert link.command("run 1") == [f"err state input-incomplete index=0 have=0 need={TOY_INPUT_BYTES}"]
    link.load_input(data)  # input 0 only: input 1 is still missing
    assert link.command("run 1") == [f"err state input-incomplete index=1 have=0 need={TOY_SECOND_BYTES}"]
    link.load_input(second[::-1], 1)
    link.run(1)
    assert link.read_output(1) == bytes((b + 1) % 256 for b in second[::-1])


def test_timed_runs_then_no_output_of_consumed_inputs(link):
    data = bytes((i * 37 + 11) % 256 for i in range(TOY_INPUT_BYTES))
    link.load_inputs([data, bytes(TOY_SECOND_BYTES)])
    latencies = link.run(runs=21, warmup=3)  # 21 runs span several latency lines
    assert len(latencies) == 21
    assert all(300 <= us < 200_000 for us in latencies)  # the toy engine sleeps 300 us per invoke
    # later runs saw the inputs as the first one left them: the device gives no output it cannot vouch for
    assert link.command("out") == ["err state no-output"]


def test_ram_report(link):
    ram = link.ram()
    assert ram.activation_bytes == 4096 and ram.used_bytes == 3000
    assert ram.heap_high_water == 777  # the board's strong definition wins over the weak default
    assert ram.stack_high_water == 0  # weak default: not measured
    assert "staging" not in link.command("ram")[-1]  # no copy of the input: it loads into the engine's tensors
    assert link.profile() == (0, [])  # the toy engine times no ops


def test_device_errors_name_the_problem(link):
    assert link.command("bogus 1") == ["err unknown"]
    assert link.command("run 0") == ["err range maxruns=10000 maxwarmup=1000"]
    assert link.command("run 1") == [f"err state input-incomplete index=0 have=0 need={TOY_INPUT_BYTES}"]
    assert link.command("out") == ["err state no-output"]
    assert link.command("out 2") == ["err range outputs=2"]
    assert link.command("out x") == ["err args"]
    assert link.command("in 5 00") == ["err gap index=0 next=0"]
    assert link.command("in 1 0 00") == ["err gap index=0 next=0"]  # input 1 before input 0
    assert link.command("in 2 0 00") == ["err range inputs=2"]
    assert link.command("in 4294967295 0 00") == ["err range inputs=2"]
    assert link.command("in 4294967296 0 00") == ["err args"]
    assert link.command(f"in {TOY_INPUT_BYTES - 1} 0000") == [f"err range size={TOY_INPUT_BYTES}"]
    assert link.command(f"in 1 {TOY_SECOND_BYTES} 00") == [f"err range size={TOY_SECOND_BYTES}"]
    assert link.command("in 0 0G") == ["err args"]
    assert link.command("in 0 000") == ["err args"]
    assert link.command("in 0 0 00 00") == ["err args"]
    assert link.command("run 99999999999") == ["err args"]
    with pytest.raises(TinydeployError, match="rejected `out 0`: err state no-output"):
        link.read_output()
    with pytest.raises(TinydeployError, match="takes 300"):
        link.load_input(b"\x00" * 10)
    with pytest.raises(TinydeployError, match="has 2 input"):
        link.load_input(b"\x00", 2)
    with pytest.raises(TinydeployError, match="1 input tensor"):
        link.load_inputs(bytes(TOY_INPUT_BYTES))


def test_an_interrupted_load_is_caught(link):
    link.load_input(bytes(TOY_INPUT_BYTES))
    assert link.command("in 1 0 0102") == ["ok in index=1 next=2"]
    assert link.command("in 1 3 03") == ["err gap index=1 next=2"]  # the chunk at offset 2 was lost
    assert link.command("in 0 0 00") == ["ok in index=0 next=1"]  # restarting input 0 needs input 1 again
    assert link.command("in 1 0 00") == ["err gap index=0 next=1"]


def _raw_replies(port: serial.Serial, until: bytes, limit: int = 50) -> list:
    replies = []
    for _ in range(limit):
        line = port.readline()
        assert line, "the device stopped answering"
        try:
            replies.append(parse_reply(line))
        except (NoiseLine, CorruptLine):
            continue
        if replies[-1].kind in ("err", "ok") and until in line:
            return replies
    raise AssertionError(f"no line containing {until!r}")


def test_corrupted_and_unframed_commands_are_rejected_not_run(host_device_binary):
    with spawned_device(host_device_binary, open_port=_serial_port) as port:
        good = frame(b"td 41 run 1 0")
        damaged = good.replace(b"run 1", b"run 9")
        port.write(b"\n" + damaged + b"\n")
        replies = _raw_replies(port, b"err crc")
        assert (replies[-1].id, replies[-1].name) == ("41", "crc")
        assert not any(r.kind == "data" for r in replies)
        port.write(b"hello\n")  # a person typing: framing error, not silence
        assert _raw_replies(port, b"err frame")[-1].id == "-"
        port.write(b"name%")  # an MLPerf Tiny runner command: no handler yet, a clear error
        assert _raw_replies(port, b"err unsupported")[-1].id == "-"
        port.write(b"td 42 id\n")  # no checksum
        assert _raw_replies(port, b"err frame")[-1].id == "42"


def test_over_long_line_and_64k_of_garbage_leave_the_device_working(link):
    link.send_raw(b"x" * 1000 + b"\n")
    link.drain(0.3)
    assert any(e.name == "too-long" and e.fields["max"] == "256" for e in link.device_errors)
    link.send_raw(bytes((i * 7919 + 13) % 256 for i in range(65536)))
    assert link.identify().board == "hostpc"
    link.load_inputs([bytes(TOY_INPUT_BYTES), bytes(TOY_SECOND_BYTES)])
    assert len(link.run(2)) == 2


def test_engine_init_failure_is_reported_not_hung(host_device_binary):
    with spawned_device(host_device_binary, "--fail-init") as device_link:
        with pytest.raises(TinydeployError, match=r"engine failed to start.*returned -7"):
            device_link.wait_ready(timeout=5)
        assert device_link.identify().engine_status == -7
        assert device_link.command("run 1") == ["err engine status=-7"]


def test_timeout_names_the_port_and_the_command():
    master, slave = os.openpty()  # nothing answers on the other side
    path = os.ttyname(slave)
    try:
        with DeviceLink(path, timeout=0.3) as device_link:
            with pytest.raises(TinydeployError) as raised:
                device_link.identify()
        assert f"no answer from the device on {path} to `id` within 0.3 s" in raised.value.one_line()
    finally:
        os.close(master)
        os.close(slave)


def test_missing_port_is_a_clear_error():
    with pytest.raises(TinydeployError, match="cannot open serial port /dev/tinydeploy-no-such-port"):
        DeviceLink("/dev/tinydeploy-no-such-port")


def test_protocol_sources_compile_warning_free_for_cortex_m4(tmp_path):
    gcc = _tool("arm-none-eabi-gcc")
    for source in PROTOCOL_SOURCES:
        _compile([gcc, "-std=c99", *CORTEX_M4, *STRICT, "-Os", *INCLUDES, "-c", str(source),
                  "-o", str(tmp_path / (source.stem + ".o"))])


def _sketch_environment() -> jinja2.Environment:
    from tinydeploy.emit.render import environment

    return environment()


@pytest.mark.parametrize("types", [("int8", "int8"), ("int8,uint8,float32", "int16,int8"), (None, None)])
def test_sketch_template_compiles_for_cortex_m4(tmp_path, types):
    gxx = _tool("arm-none-eabi-g++")
    hostile = 'evil */ "name" \\ ??= \n\u2603'
    context = dict(board_name="virtual", engine_name="native", model_name=hostile, model_sha256="ab" * 32,
                   build_id="b1d", baud=115200)
    if types[0] is not None:
        context["input_types"], context["output_types"] = types
    env = _sketch_environment()
    (tmp_path / "td_model_info.h").write_text(env.get_template("sketch/td_model_info.h.j2").render(**context))
    (tmp_path / "main.cpp").write_text(env.get_template("sketch/main.cpp.j2").render(**context))
    _compile([gxx, "-std=gnu++17", *CORTEX_M4, *STRICT, "-Os", "-fno-exceptions", "-fno-rtti", *INCLUDES,
              "-I", str(tmp_path), "-I", str(HOSTDEVICE / "arduino"), "-c", str(tmp_path / "main.cpp"),
              "-o", str(tmp_path / "main.o")])
    sizes = subprocess.run([_tool("arm-none-eabi-size"), str(tmp_path / "main.o")], capture_output=True,
                           text=True, check=True).stdout.splitlines()[1].split()
    assert int(sizes[2]) < 64  # .bss: no copy of the input tensor (it loads into the engine's own tensors)


@pytest.mark.parametrize("text", ['plain', 'q"uote\\back', '*/ /* ??= ??/', 'line\nfeed\r\ttab\x01',
                                  'snow \u2603 \U0001f600', '\x7f\x80 12'])
def test_c_string_literal_compiles_to_the_exact_utf8_bytes(tmp_path, text):
    source = tmp_path / "literal.c"
    source.write_text(f'#include <stdio.h>\n/* {c_string_literal(text)} */\n'
                      f'static const char s[] = {c_string_literal(text)};\n'
                      'int main(void) { fwrite(s, 1, sizeof s - 1, stdout); return 0; }\n')
    binary = tmp_path / "literal"
    _compile([_tool("gcc"), "-std=c99", "-pedantic", "-trigraphs", *STRICT, str(source), "-o", str(binary)])
    assert subprocess.run([str(binary)], capture_output=True, check=True).stdout == text.encode("utf-8")


def test_crc_matches_zlib(host_device_binary):
    # the device's nibble-table CRC-32 must equal zlib's, or every line would be rejected; checked end to end
    # by the other tests, and here on a line with every byte value the escaping produces
    with spawned_device(host_device_binary, open_port=_serial_port) as port:
        port.write(b"\n" + frame(b"td 9 id") + b"\n")
        line = b""
        while b"@td 9 ok id" not in line:
            line = port.readline()
            assert line
        body, _, crc = line.rstrip(b"\r\n").rpartition(b"*")
        body = body[body.find(b"@td 9"):]
        assert int(crc, 16) == zlib.crc32(body)


def test_wait_ready_probes_when_the_ready_line_was_missed(host_device_binary):
    """As on a USB board, the device boots before the host opens the port (opening flushes its `ready`)."""
    master, slave = os.openpty()
    tty.setraw(slave)
    process = subprocess.Popen([str(host_device_binary)], stdin=master, stdout=master, close_fds=True)
    try:
        time.sleep(0.3)
        with DeviceLink(os.ttyname(slave), timeout=5) as device_link:
            assert device_link.wait_ready(timeout=5, probe_every=0.2).board == "hostpc"
            assert device_link.ram().used_bytes == 3000  # the probe's late answer does not confuse what follows
    finally:
        process.kill()
        process.wait()
        os.close(master)
        os.close(slave)


def test_wait_ready_timeout_names_the_port():
    master, slave = os.openpty()
    path = os.ttyname(slave)
    try:
        with DeviceLink(path, timeout=0.2) as device_link:
            with pytest.raises(TinydeployError, match=f"device on {path} did not announce `ready`"):
                device_link.wait_ready(timeout=0.5, probe_every=0.2)
    finally:
        os.close(master)
        os.close(slave)
