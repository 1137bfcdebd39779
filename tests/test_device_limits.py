"""A misbehaving device must not hang the host, grow its memory or reach the terminal, and the host accepts no
benchmark the device would refuse. The devices here are real peers on a loopback TCP port (pyserial's socket://,
as QEMU's serial port), written to misbehave: endless well-framed lines with the right id, absurd numbers in the
identity, control characters in names; and the protocol's own device code built for the host."""

from __future__ import annotations

import re
import threading
import time
import tracemalloc
import zlib
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.loopback_peer import LoopbackPeer
from tests.test_protocol_device import host_device_binary, spawned_device  # noqa: F401 (fixture)
from tinydeploy.errors import TinydeployError
from tinydeploy.link import DeviceLink
from tinydeploy.link.framing import encode_reply, escape_value

IDENTITY = {"proto": "2", "board": "peer", "engine": "xor", "model": "xor", "sha256": "00", "build": "test",
            "inputs": "1", "outputs": "1", "in": "4", "out": "4", "intype": "int8", "outtype": "int8", "line": "256",
            "maxruns": "10000", "status": "0"}


class MisbehavingPeer(LoopbackPeer):
    """A device on a loopback port. `answer(verb, command_id, args)` returns the reply lines for a command, or
    an endless iterator of them (sent until the host goes away); `raw` is sent once the host connects."""

    def __init__(self, answer, raw: bytes = b""):
        self.answer, self.raw = answer, raw
        super().__init__()

    def connected(self) -> None:
        self._conn.sendall(self.raw + encode_reply("-", "ready", "proto=2"))

    def received(self, line: bytes) -> None:
        body, _, crc = line.strip().partition(b"*")
        if body and crc.decode() == f"{zlib.crc32(body) & 0xFFFFFFFF:08X}":
            _, command_id, verb, *args = body.decode().split(" ")
            for reply in self.answer(verb, command_id, args):
                self._conn.sendall(reply)


def identity(command_id: str, **changes: str) -> bytes:
    fields = {**IDENTITY, **changes}
    return encode_reply(command_id, "ok", "id", *(f"{key}={value}" for key, value in fields.items()))


def honest(verb: str, command_id: str, args: list[str], **identity_changes: str):
    if verb == "id":
        return [identity(command_id, **identity_changes)]
    if verb == "in":
        return [encode_reply(command_id, "ok", "in", f"next={len(args[2]) // 2}")]
    if verb == "run":
        return [encode_reply(command_id, "data", "lat", "0", *["7"] * int(args[0])),
                encode_reply(command_id, "ok", "run", f"n={args[0]}", "w=0")]
    if verb == "out":
        return [encode_reply(command_id, "data", "out", "0", "01020304"), encode_reply(command_id, "ok", "out",
                                                                                          "index=0", "bytes=4")]
    if verb == "prof":  # not a profiling build
        return [encode_reply(command_id, "ok", "prof", "steps=0", "runs=0")]
    if verb == "ram":
        return [encode_reply(command_id, "ok", "ram", "stack=100", "heap=0", "act=64", "used=60")]
    return [encode_reply(command_id, "err", "unknown")]


def endless(line):
    def lines():
        while True:
            yield line
    return lines()


# Answers that never end, every line well framed and carrying the command's id.
FLOODS = {
    "the same latency line again and again": ("run", lambda i: endless(encode_reply(i, "data", "lat", "0", "5"))),
    "a warm-up count that never advances": ("run", lambda i: endless(encode_reply(i, "data", "warm", "1"))),
    "data lines the run does not know": ("run", lambda i: endless(encode_reply(i, "data", "hello", "x=1"))),
    "data lines before an identity that never ends": ("id", lambda i: endless(encode_reply(i, "data", "x", "y=1"))),
    "output lines beyond the output tensor": (
        "out", lambda i: (encode_reply(i, "data", "out", str(4 * n), "01020304") for n in range(10**9))),
}


def _call(link: DeviceLink, verb: str):
    return {"run": lambda: link.run(3, 1), "id": link.identify, "out": link.read_output}[verb]()


@pytest.mark.parametrize("flood", sorted(FLOODS))
def test_a_device_that_never_stops_answering_is_an_error_within_the_deadline_and_bounded_memory(flood):
    verb, endless_answer = FLOODS[flood]

    def answer(command_verb, command_id, args):
        return endless_answer(command_id) if command_verb == verb else honest(command_verb, command_id, args)

    outcome: dict[str, object] = {}

    def exchange() -> None:
        tracemalloc.start()
        try:
            with DeviceLink(peer.url, timeout=2.0) as link:
                link.identify() if verb != "id" else None
                started = time.monotonic()
                try:
                    _call(link, verb)
                except TinydeployError as exc:
                    outcome["error"] = exc.one_line()
                outcome["seconds"] = time.monotonic() - started
        finally:
            outcome["peak"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()

    with MisbehavingPeer(answer) as peer:
        worker = threading.Thread(target=exchange, daemon=True)
        worker.start()
        worker.join(30)
        hung = worker.is_alive()
    assert not hung, f"{flood}: the host still waits after 30 s"
    assert "error" in outcome, outcome
    assert outcome["seconds"] < 6, outcome  # the 2 s timeout, plus the time the data could take on the line
    assert outcome["peak"] < 8 << 20, f"{flood}: {outcome['peak']:,} bytes allocated"
    assert peer.url in outcome["error"] and "\n" not in outcome["error"]


@pytest.mark.parametrize("changes, fragment", [
    ({"in": "1" + "0" * 30}, "in="), ({"in": "-5"}, "in="), ({"out": "99999999999"}, "out="),
    ({"line": "3"}, "line="), ({"maxruns": "0"}, "maxruns="), ({"status": str(1 << 40)}, "status="),
    ({"proto": "-1"}, "proto="), ({"sha256": "zz%0A"}, "model hash"), ({"inputs": "99999"}, "inputs="),
    ({"outputs": "2"}, "out="), ({"intype": "int8,int8"}, "intype="), ({"outtype": "%1B[2J"}, "outtype="),
])
def test_absurd_numbers_in_the_identity_are_one_line_exit_2(changes, fragment):
    with MisbehavingPeer(lambda verb, i, args: honest(verb, i, args, **changes)) as peer:
        result = run_cli("monitor", "--port", peer.url, "--runs", "2", timeout=60)
    assert result.returncode == 2, (result.returncode, result.stderr[-800:])
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and errors[0].startswith("error: the device on"), result.stderr
    assert fragment in errors[0] and "internal error" not in errors[0]


def test_control_characters_in_names_from_the_device_never_reach_the_terminal():
    hostile = {"model": escape_value("\x1b]0;owned\x07\x1b[2J\u202eledom"), "board": escape_value("b\r\noard\x00"),
               "engine": escape_value("\x9b31m")}
    for as_json in (False, True):
        with MisbehavingPeer(lambda verb, i, args: honest(verb, i, args, **hostile)) as peer:
            result = run_cli("monitor", "--port", peer.url, "--runs", "2", *(["--json"] if as_json else []),
                             timeout=60)
        assert result.returncode == 0, result.stderr[-800:]
        shown = result.stdout + result.stderr
        assert not re.search("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", shown), repr(shown)
        assert "\\x1b" in shown and "ledom" in shown  # the name is still there, spelled out


def test_control_characters_in_a_reply_line_make_it_corrupt_not_printed():
    """The device escapes every value; raw control bytes in a reply are damage, so the link never shows them."""
    def answer(verb, command_id, args):
        if verb == "ram":
            return [encode_reply(command_id, "err", "state\x1b[2J"), encode_reply(command_id, "err", "state")]
        return honest(verb, command_id, args)

    with MisbehavingPeer(answer) as peer, DeviceLink(peer.url, timeout=2) as link:
        with pytest.raises(TinydeployError) as raised:
            link.ram()
    assert "\x1b" not in raised.value.one_line() and link.corrupt_lines == 1


def mlperf_peer(answer) -> LoopbackPeer:
    """An MLPerf Tiny (EEMBC runner) device: commands end with '%'."""
    class Peer(LoopbackPeer):
        separator = b"%"

        def received(self, command: bytes) -> None:
            for reply in answer(command.decode().strip()):
                self._conn.sendall(reply)
    return Peer()


@pytest.mark.parametrize("flood", ["result lines", "one line without an end"])
def test_an_mlperf_device_that_never_says_ready_is_an_error_within_the_timeout(flood):
    def answer(command: str):
        if command != "name":
            return [b"m-ready\r\n"]
        return endless(b"m-name-dut-[flood]\r\n" if flood == "result lines" else b"x" * 4096)

    with mlperf_peer(answer) as peer:
        started = time.monotonic()
        result = run_cli("bench", "--port", peer.url, "--protocol", "mlperf-tiny", "--input-bytes", "4",
                         "--timeout", "2", timeout=60)
    assert result.returncode == 2, result.stderr[-800:]
    assert time.monotonic() - started < 30
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) == 1 and peer.url in errors[0], result.stderr


def test_non_finite_mlperf_results_are_refused():
    def answer(command: str):
        replies = {"name": [b"m-name-dut-[peer]\r\n"], "profile": [b"m-profile-[x]\r\n"],
                   "infer 2 0": [b"m-lap-us-10\r\n", b"m-lap-us-30\r\n", b"m-results-[0.5,nan]\r\n"]}
        return replies.get(command, [b"m-load-done\r\n" if command.startswith("db ") and command != "db load 4"
                                     else b""]) + [b"m-ready\r\n"]

    with mlperf_peer(answer) as peer:
        result = run_cli("bench", "--port", peer.url, "--protocol", "mlperf-tiny", "--input-bytes", "4",
                         "--runs", "2", "--warmup", "0", "--json", timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr[-800:])
    assert "not a finite number" in result.stderr and "NaN" not in result.stdout


# ---- run counts: one limit, from the firmware --------------------------------------------------------------------


def test_run_limits_are_read_from_the_firmware_header(tmp_path, monkeypatch):
    import shutil

    from tinydeploy.link import limits

    firmware = tmp_path / "firmware"
    shutil.copytree(Path(limits.firmware_dir()), firmware)
    header = firmware / "protocol" / "td_protocol.h"
    header.write_text(re.sub(r"(#define TD_PROTOCOL_MAX_RUNS )\d+u", r"\g<1>77u", header.read_text()))
    monkeypatch.setattr(limits, "firmware_dir", lambda: firmware)
    limits.run_limits.cache_clear()
    try:
        assert limits.run_limits().max_runs == 77
        limits.check_run_counts(77, 0)
        with pytest.raises(TinydeployError, match=r"--runs 78 is outside what the device accepts \(1 to 77"):
            limits.check_run_counts(78, 0)
    finally:
        limits.run_limits.cache_clear()


def header_limits() -> tuple[int, int]:
    """TD_PROTOCOL_MAX_RUNS and TD_PROTOCOL_MAX_WARMUP as the firmware defines them."""
    from tinydeploy.paths import firmware_dir

    text = (firmware_dir() / "protocol" / "td_protocol.h").read_text()
    runs, warmup = (int(re.search(rf"#define {name} (\d+)u", text).group(1))
                    for name in ("TD_PROTOCOL_MAX_RUNS", "TD_PROTOCOL_MAX_WARMUP"))
    return runs, warmup


@pytest.mark.parametrize("command", ["bench", "monitor", "flash"])
def test_every_command_refuses_runs_the_device_refuses_before_touching_a_port(command, tmp_path):
    from types import SimpleNamespace

    max_runs, max_warmup = header_limits()
    limit = SimpleNamespace(max_runs=max_runs, max_warmup=max_warmup)
    target = ["flash", tmp_path / "missing.tflite"] if command == "flash" else [command, "--port",
                                                                                  "socket://127.0.0.1:9"]
    over = run_cli(*target, "--runs", str(limit.max_runs + 1))
    assert over.returncode == 2 and f"1 to {limit.max_runs:,} timed runs" in over.stderr, over.stderr
    warm = run_cli(*target, "--runs", "1", "--warmup", str(limit.max_warmup + 1))
    assert warm.returncode == 2 and f"0 to {limit.max_warmup:,} warm-ups" in warm.stderr, warm.stderr


def test_the_device_allows_exactly_what_the_host_allows(host_device_binary):  # noqa: F811
    """The protocol's device code, built for the host: it reports the header's limit and refuses one more,
    and the link refuses that before sending anything."""
    limit = header_limits()[0]
    with spawned_device(host_device_binary) as link:
        link.timeout = 5
        info = link.wait_ready(10)
        assert info.max_runs == limit
        link.load_inputs([bytes(spec.bytes) for spec in info.inputs])
        assert link.command(f"run {limit + 1}")[-1].startswith("err range")
        with pytest.raises(TinydeployError, match=rf"1 to {limit:,} timed runs"):
            link.run(limit + 1)
        assert len(link.run(3)) == 3
