"""The firmware on the virtual board fed garbage: 64 KB of random bytes, over-long lines, unknown commands and
damaged checksums. It answers each bad line as docs/protocol.md says, runs nothing it should not, and afterwards
still identifies itself and computes the same outputs as before."""

from __future__ import annotations

import random
import time
from collections import Counter

import pytest

from tests.virtual_sine import sine_firmware
from tinydeploy.link import DeviceLink
from tinydeploy.link.framing import FrameError, frame, parse_reply

pytestmark = pytest.mark.virtual

PROBE_INPUTS = [bytes([value]) for value in (0, 1, 37, 64, 127, 128, 200, 255)]
LINE_MAX = 256
SENTINEL_ID = "987654321"


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """One virtual board for the module, with its identity and outputs before any garbage."""
    from tinydeploy.runners.qemu import QemuBoard

    built = sine_firmware(tmp_path_factory)
    with QemuBoard(elf_path=built.elf_path) as board, DeviceLink(board.port_url, timeout=10) as link:
        info = link.wait_ready(20)
        before = [outputs(link, data) for data in PROBE_INPUTS]
        assert before == [built.expected[data] for data in PROBE_INPUTS]
        yield link, info, before
        board.check_alive()  # no fault exit while the module ran


def outputs(link: DeviceLink, data: bytes) -> bytes:
    link.load_input(data)
    assert len(link.run(2, 1)) == 2  # timed runs work; they consume the input, so the output comes from a fresh load
    link.load_input(data)
    link.run(1, 0)
    return link.read_output()


def assert_works_as_before(device) -> None:
    link, info, before = device
    assert link.identify() == info
    assert [outputs(link, data) for data in PROBE_INPUTS] == before


def answers_to(link: DeviceLink, data: bytes, timeout: float = 30.0) -> list[bytes]:
    """Send `data` raw, then a framed `ram` command; return every line the device sent before answering it
    (the device handles lines in order, so all answers to `data` came first)."""
    sentinel = b"\n" + frame(f"td {SENTINEL_ID} ram".encode()) + b"\n"
    lines = link.send_raw(data + sentinel)
    deadline = time.monotonic() + timeout
    while not any(_is_sentinel(line) for line in lines):
        assert time.monotonic() < deadline, f"no answer to the sentinel within {timeout} s"
        lines += link.drain(0.05)
    return lines[:next(i for i, line in enumerate(lines) if _is_sentinel(line))]


def _is_sentinel(line: bytes) -> bool:
    try:
        reply = parse_reply(line)
    except FrameError:
        return False
    return reply.id == SENTINEL_ID and reply.kind == "ok"


def replies_in(lines: list[bytes]) -> list:
    found = []
    for line in lines:
        try:
            found.append(parse_reply(line))
        except FrameError:
            pass
    return found


def expected_answers(data: bytes) -> Counter:
    """What the device's line reader (td_protocol_feed_byte) must answer to `data`: one `err` line per non-blank
    line ended by \\n or \\r (too-long ones included), one `m-ready` per line ended by '%' (the MLPerf Tiny
    handler), nothing for blank lines (spaces, tabs, NULs)."""
    counts: Counter = Counter()
    line = bytearray()
    overflow = False
    for byte in data:
        if byte in b"\n\r%":
            if overflow:
                counts["too-long"] += 1
            elif byte == ord("%"):
                counts["m-ready"] += 1
            elif line.strip(b" \t\0"):
                counts["err"] += 1
            line.clear()
            overflow = False
        elif len(line) >= LINE_MAX:
            overflow = True
        else:
            line.append(byte)
    return counts


def garbage(size: int, seed: int) -> bytes:
    """Random bytes with the protocol's own pieces mixed in: NUL and newline runs, reply and command prefixes,
    commands with wrong checksums, '%' terminators."""
    rng = random.Random(seed)
    pieces = [b"\0" * 16, b"\n\n\r\n", b"@td ", b"td ", b"td 12 id*DEADBEEF\n", b"td 5 run 10000 1000*0BADC0DE\r",
              b"*", b"%", b" " * 300, b"@td - ready proto=1*50C41E2D\r\n"]
    out = bytearray()
    while len(out) < size:
        out += rng.choice(pieces) if rng.random() < 0.2 else rng.randbytes(rng.randint(1, 200))
    return bytes(out[:size])


def test_64_kb_of_garbage_gets_one_answer_per_line_and_leaves_it_working(device):
    link = device[0]
    data = garbage(65536, seed=2024)
    started = time.monotonic()
    lines = answers_to(link, data)
    seconds = time.monotonic() - started
    errors = [r for r in replies_in(lines) if r.kind == "err"]
    expected = expected_answers(data + b"\n")  # the sentinel's leading line end closes the last garbage line
    assert Counter(r.name == "too-long" for r in errors) == Counter({False: expected["err"],
                                                                     True: expected["too-long"]})
    assert {r.name for r in errors} <= {"frame", "crc", "too-long"}  # nothing ran: no other answer is possible
    assert all(r.fields["max"] == str(LINE_MAX) for r in errors if r.name == "too-long")
    assert sum(line.rstrip(b"\r") == b"m-ready" for line in lines) == expected["m-ready"]
    assert not any(r.kind in ("ok", "data") for r in replies_in(lines))
    assert expected["err"] > 100 and expected["too-long"] > 10 and expected["m-ready"] > 100
    print(f"64 KB of garbage answered in {seconds:.2f} s: {dict(expected)}")
    assert_works_as_before(device)


def test_over_long_lines_are_dropped_with_one_error_each(device):
    link = device[0]
    body = b"td 31 id " + b"x" * 1000
    valid_but_long = b"\n" + frame(body) + b"\n"  # a well-formed command would be run if it were not truncated
    lines = answers_to(link, b"y" * 1000 + b"\n" + valid_but_long + b"z" * 5000 + b"\r")
    errors = [r for r in replies_in(lines) if r.kind == "err"]
    assert [(r.id, r.name, r.fields) for r in errors] == [("-", "too-long", {"max": "256"})] * 3
    assert_works_as_before(device)


def test_unknown_commands_and_bad_arguments_are_refused(device):
    link = device[0]
    assert link.command("frobnicate") == ["err unknown"]
    assert link.command("format flash now") == ["err unknown"]
    assert link.command("run") == ["err args"]
    assert link.command("run 0") == ["err range maxruns=10000 maxwarmup=1000"]
    assert link.command("run 99999999999") == ["err args"]  # more digits than 32 bits
    assert link.command("in 0 ABC") == ["err args"]  # odd number of hex digits
    assert link.command("in 0 GG") == ["err args"]
    assert link.command("in 1 00") == ["err range size=1"]
    assert link.command("id extra") == ["err args"]
    lines = answers_to(link, b"hello\n@td 1 ok id*00000000\n\0\0\0\n   \t\n")
    assert [(r.id, r.kind, r.name) for r in replies_in(lines)] == [("-", "err", "frame")] * 2  # blanks: silence
    assert_works_as_before(device)


def test_a_valid_command_with_a_wrong_checksum_is_refused_not_run(device):
    link = device[0]
    good = frame(b"td 77 run 3 0")
    for damaged in (good[:-1] + (b"0" if good[-1:] != b"0" else b"1"),  # checksum digit
                    good.replace(b"run 3", b"run 4"),  # body
                    good.replace(b"td 77", b"td 78")):  # the id itself: the device echoes the id it read
        lines = answers_to(link, b"\n" + damaged + b"\n")
        replies = replies_in(lines)
        assert [(r.kind, r.name) for r in replies] == [("err", "crc")], lines
        assert replies[0].id == damaged.split(b" ")[1].decode()
    lines = answers_to(link, b"\ntd 77 run 3 0\n")  # no checksum at all
    assert [(r.id, r.kind, r.name) for r in replies_in(lines)] == [("77", "err", "frame")]
    assert_works_as_before(device)
