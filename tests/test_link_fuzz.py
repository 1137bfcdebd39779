"""Fuzzing the host side of the serial link: the framing functions with random, split, merged, noisy and
bit-flipped bytes, and DeviceLink against a real byte stream (a loopback TCP socket, pyserial's socket:// as for
QEMU, or pyserial's loop://) served by a thread that speaks the protocol. The link must never crash, never take a
damaged line for a reply, and report a missing answer as one clear error."""

from __future__ import annotations

import random
import socket
import time
import zlib

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests.loopback_peer import LoopbackPeer
from tinydeploy.errors import TinydeployError
from tinydeploy.link import DeviceLink
from tinydeploy.link.framing import FrameError, LineSplitter, Reply, encode_reply, escape_value, parse_reply

FAST = settings(max_examples=150, deadline=None)

# ---- strategies -------------------------------------------------------------------------------------------------

reply_ids = st.one_of(st.just("-"), st.integers(1, 999_999_999).map(str))
words = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="*%="), min_size=1,
                max_size=10)
values = st.text(max_size=10).map(escape_value)


@st.composite
def reply_lines(draw) -> bytes:
    """A reply as the device writes it (with \\r\\n), at most ~250 bytes like the device's longest lines."""
    tokens = draw(st.lists(words, max_size=4))
    tokens += [f"{key}={value}" for key, value in draw(st.dictionaries(words, values, max_size=4)).items()]
    line = encode_reply(draw(reply_ids), draw(st.sampled_from(["ok", "err", "data", "ready"])), *tokens)
    assume(len(line) <= 250)
    return line


def accepted(stream: bytes, pieces: list[int] = (), max_line: int = 4096) -> list[Reply]:
    """The replies the host takes from `stream` when it arrives cut at `pieces` (offsets)."""
    splitter = LineSplitter(max_line)
    lines: list[bytes] = []
    cuts = sorted({0, *[p % (len(stream) + 1) for p in pieces], len(stream)})
    for start, end in zip(cuts, cuts[1:]):
        lines += splitter.feed(stream[start:end])
        assert len(splitter.pending) <= max_line
    lines.append(splitter.pending)  # a last line without its end is parsed too: it must not pass either
    found = []
    for line in lines:
        assert len(line) <= max_line
        try:
            found.append(parse_reply(line))
        except FrameError:
            pass
    return found


def flip_bits(line: bytes, bits: list[int]) -> bytes:
    damaged = bytearray(line)
    for bit in bits:
        damaged[bit // 8] ^= 1 << (bit % 8)
    return bytes(damaged)


# ---- framing: random bytes, split and merged lines, noise ----------------------------------------------------------

@FAST
@given(st.binary(max_size=3000), st.lists(st.integers(0, 3000), max_size=20))
def test_random_bytes_in_any_pieces_give_no_reply(data, pieces):
    assert accepted(data, pieces, max_line=512) == []


@FAST
@given(st.lists(st.binary(max_size=40).filter(lambda b: b"\n" not in b), min_size=1, max_size=30),
       st.lists(st.integers(0, 5000), max_size=20))
def test_lines_that_look_like_replies_but_are_not_give_no_reply(fragments, pieces):
    # prefixes, stars and hex digits everywhere, but never a matching checksum
    stream = b"".join(b"@td " + f + b"*" + f"{zlib.crc32(f) & 0xFFFFFFFF:08X}".encode() + b"\r\n" for f in fragments)
    assert accepted(stream, pieces) == []


@FAST
@given(st.lists(st.tuples(st.binary(max_size=700), reply_lines()), min_size=1, max_size=8),
       st.lists(st.integers(0, 10_000), max_size=30))
def test_replies_cut_anywhere_merged_and_after_noise_come_out_whole(items, pieces):
    """Each reply preceded by noise (any bytes: its own lines, or glued before the prefix, or longer than the
    splitter's limit without a line end); the stream is cut at random points and read in those pieces."""
    stream = b"".join(noise + line for noise, line in items)
    assert accepted(stream, pieces, max_line=300) == [parse_reply(line) for _, line in items]


@FAST
@given(reply_lines(), st.binary(min_size=1, max_size=50), st.data())
def test_noise_inside_a_reply_is_never_taken_for_it(line, noise, data):
    body_end = len(line) - 2  # before \r\n
    at = data.draw(st.integers(1, body_end - 1), label="insert at")
    damaged = line[:at] + noise + line[at:]
    assert all(reply == parse_reply(line) for reply in accepted(damaged))  # at most the intact reply, never other


def test_every_single_bit_flip_of_a_reply_is_rejected():
    lines = [encode_reply("12", "ok", "id", "proto=1", "board=virtual", f"model={escape_value('kws *=% ☃')}",
                          "in=490", "out=12"),
             encode_reply("-", "ready", "proto=1"),
             encode_reply("7", "data", "out", "0", "00FF7F80" * 16),
             encode_reply("999999999", "err", "crc")]
    for line in lines:
        for bit in range(len(line) * 8):
            damaged = flip_bits(line, [bit])
            assert accepted(damaged) == [], (line, bit)  # also case flips of checksum letters ('A' -> 'a')


@FAST
@given(reply_lines(), st.data())
def test_two_or_three_bit_errors_before_the_checksum_are_rejected(line, data):
    """CRC-32 has a Hamming distance of at least 5 below 2,974 bits: every error of 1 to 4 bits in a checked line
    is detected. Here 2-3 flips in the checked bytes (the checksum text intact)."""
    body_bits = line.rindex(b"*") * 8
    bits = data.draw(st.lists(st.integers(0, body_bits - 1), min_size=2, max_size=3, unique=True), label="bits")
    assert accepted(flip_bits(line, bits)) == []


@FAST
@given(reply_lines(), st.data())
def test_two_bit_errors_anywhere_are_rejected(line, data):
    """Anywhere, the checksum text and line end included: a flipped checksum digit changes at most 3 bits of
    the value, so one flip there and one in the body stay within the detected 4 bits."""
    bits = data.draw(st.lists(st.integers(0, len(line) * 8 - 1), min_size=2, max_size=2, unique=True), label="bits")
    damaged = flip_bits(line, bits)
    assume(damaged.rstrip(b"\r\n") != line.rstrip(b"\r\n"))  # both flips in the line end: the line is intact
    assert accepted(damaged) == []


def test_a_reply_glued_to_noise_at_the_line_limit_is_not_cut_in_two():
    reply = encode_reply("3", "ok", "ram", "stack=1")
    for noise_bytes in range(250, 320):  # the reply straddles the 300-byte limit, in one read or byte by byte
        stream = b"x" * noise_bytes + reply
        assert accepted(stream, max_line=300) == [parse_reply(reply)], noise_bytes
        assert accepted(stream, list(range(len(stream))), max_line=300) == [parse_reply(reply)], noise_bytes


def test_endless_line_keeps_memory_bounded_and_the_reply_after_it():
    rng = random.Random(5)
    splitter = LineSplitter(max_line=4096)
    reply = encode_reply("3", "ok", "ram", "stack=1")
    for _ in range(256):  # 1 MB without a line end, stray prefixes included
        chunk = bytearray(rng.randbytes(4096).replace(b"\n", b"."))
        chunk[100:104] = b"@td "
        lines = splitter.feed(bytes(chunk))
        assert all(len(line) <= 4096 for line in lines) and len(splitter.pending) <= 4096
    got = splitter.feed(reply[:10]) + splitter.feed(reply[10:])
    assert parse_reply(got[-1]) == parse_reply(reply)


# ---- DeviceLink over a real byte stream -------------------------------------------------------------------------

class ProtocolPeer(LoopbackPeer):
    """A device written in Python that speaks the protocol on a loopback TCP port (pyserial's socket://, as
    QEMU's serial port). Its engine outputs the input XOR 0x5A. Knobs make it misbehave:
    `noise()` bytes go before every reply line, `corrupt(index, line)` may damage its index-th line,
    `stale` sends another command's answer with the same id first, `silent` never answers, `hang_up` closes
    the connection on the first command, `pieces` writes each line in bytes-sized pieces."""

    def __init__(self, input_bytes: int = 300, *, noise=lambda: b"", corrupt=lambda index, line: line,
                 stale: bool = False, silent: bool = False, hang_up: bool = False, pieces: int = 0):
        self.input = bytearray(input_bytes)
        self.loaded = 0
        self.output: bytes | None = None
        self.noise, self.corrupt, self.stale, self.silent, self.hang_up, self.pieces = (
            noise, corrupt, stale, silent, hang_up, pieces)
        self.commands: list[bytes] = []
        self.sent_lines = 0
        super().__init__()

    def connected(self) -> None:
        self._conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # as QEMU's nodelay=on
        self._send(encode_reply("-", "ready", "proto=2"))

    def received(self, line: bytes) -> None:
        if line.strip():
            self._answer(line)

    def _send(self, line: bytes) -> None:
        line = self.noise() + self.corrupt(self.sent_lines, line)
        self.sent_lines += 1
        step = self.pieces or len(line)
        for start in range(0, len(line), step):
            self._conn.sendall(line[start:start + step])

    def _answer(self, line: bytes) -> None:
        self.commands.append(line)
        if self.hang_up:
            self._conn.close()
            return
        if self.silent:
            return
        body, _, crc = line.partition(b"*")
        words = body.decode().split(" ")
        if crc.decode() != f"{zlib.crc32(body) & 0xFFFFFFFF:08X}":
            return self._send(encode_reply(words[1], "err", "crc"))
        command_id, verb, args = words[1], words[2], words[3:]
        if self.stale:
            other = "ram" if verb != "ram" else "id"
            self._send(encode_reply(command_id, "data", "out", "0", "00"))
            self._send(encode_reply(command_id, "ok", other, "next=1", "bytes=1"))
        if verb == "id":
            return self._send(encode_reply(command_id, "ok", "id", "proto=2", "board=peer", "engine=xor",
                                           "model=xor", "sha256=00", "build=test", "inputs=1", "outputs=1",
                                           f"in={len(self.input)}", f"out={len(self.input)}", "intype=int8",
                                           "outtype=int8", "line=256", "maxruns=10000", "status=0"))
        if verb == "in":
            offset, chunk = int(args[1]), bytes.fromhex(args[2])
            self.input[offset:offset + len(chunk)] = chunk
            self.loaded = len(chunk) if offset == 0 else max(self.loaded, offset + len(chunk))
            return self._send(encode_reply(command_id, "ok", "in", f"index={args[0]}", f"next={self.loaded}"))
        if verb == "run":
            self.output = bytes(b ^ 0x5A for b in self.input)
            self._send(encode_reply(command_id, "data", "lat", "0", *["7"] * int(args[0])))
            return self._send(encode_reply(command_id, "ok", "run", f"n={args[0]}", "w=0"))
        if verb == "out":
            for offset in range(0, len(self.output), 64):
                self._send(encode_reply(command_id, "data", "out", str(offset),
                                        self.output[offset:offset + 64].hex().upper()))
            return self._send(encode_reply(command_id, "ok", "out", f"index={args[0]}", f"bytes={len(self.output)}"))
        self._send(encode_reply(command_id, "err", "unknown"))


def round_trip(link: DeviceLink, data: bytes) -> bytes:
    link.load_input(data)
    assert link.run(1) == [7]
    return link.read_output()


def xor(data: bytes) -> bytes:
    return bytes(b ^ 0x5A for b in data)


def test_silent_device_times_out_with_one_clear_error_naming_port_and_seconds():
    with ProtocolPeer(silent=True) as peer, DeviceLink(peer.url, timeout=0.3) as link:
        started = time.monotonic()
        with pytest.raises(TinydeployError) as raised:
            link.identify()
        elapsed = time.monotonic() - started
    assert 0.3 <= elapsed < 1.5
    message = raised.value.one_line()
    assert f"no answer from the device on {peer.url} to `id` within 0.3 s" in message
    assert "check that the firmware runs" in message and "\n" not in message
    assert raised.value.__cause__ is None  # our error, not a wrapped socket exception


def test_a_port_that_only_echoes_is_noise_and_times_out():
    """pyserial's loop:// hands back what is written: the command comes back, which is not an answer."""
    with DeviceLink("loop://", timeout=0.2) as link:
        with pytest.raises(TinydeployError, match=r"no answer from the device on loop:// to `ram` within 0.2 s"):
            link.ram()
        assert any(b"ram*" in line for line in link.noise)


def test_wait_ready_timeout_names_port_and_seconds():
    with ProtocolPeer(silent=True) as peer:
        with DeviceLink(peer.url, timeout=0.2) as link:
            link.drain(0.2)  # swallow the `ready` line: from now on nothing answers
            with pytest.raises(TinydeployError,
                               match=rf"device on {peer.url} did not announce `ready` nor answer `id` within 0.4 s"):
                link.wait_ready(timeout=0.4, probe_every=0.1)


def test_hang_up_is_a_clear_error_at_once():
    with ProtocolPeer(hang_up=True) as peer, DeviceLink(peer.url, timeout=5) as link:
        started = time.monotonic()
        with pytest.raises(TinydeployError, match=rf"lost the serial port {peer.url} while"):
            link.identify()
        assert time.monotonic() - started < 2


def test_noise_before_between_and_glued_to_replies_is_skipped():
    rng = random.Random(11)
    noise_kinds = [b"boot: mbed OS 6.17\r\n", b"\x00\xff\xfe\r\n", b"@td half a line\r\n", b"DEBUG x=3 ",
                   b"\x00", b"@td", b"m-ready\r\n", b"*DEADBEEF\r\n", b"\r\n"]

    def noise() -> bytes:
        return b"".join(rng.choice(noise_kinds) for _ in range(rng.randint(0, 3)))

    with ProtocolPeer(noise=noise, pieces=7) as peer, DeviceLink(peer.url, timeout=5) as link:
        assert link.wait_ready(5).board == "peer"
        for _ in range(5):
            data = rng.randbytes(300)
            assert round_trip(link, data) == xor(data)
        assert link.noise and link.corrupt_lines > 0  # it saw the noise and the damaged prefixes, and skipped them


def test_late_answers_with_the_same_id_are_not_taken():
    with ProtocolPeer(stale=True) as peer, DeviceLink(peer.url, timeout=5) as link:
        assert link.identify().board == "peer"
        data = bytes(range(256)) + bytes(44)
        assert round_trip(link, data) == xor(data)
        assert link.stale_replies >= 5


def test_each_link_starts_at_another_command_id():
    first_ids = set()
    for _ in range(3):
        with ProtocolPeer() as peer, DeviceLink(peer.url, timeout=5) as link:
            link.identify()
            first_ids.add(peer.commands[0].split(b" ")[1])
    assert len(first_ids) == 3  # a restarted host does not reuse the ids the device may still answer


@pytest.fixture(scope="module")
def damaging_peer():
    """One peer and link for all examples (pyserial's socket:// close sleeps 0.3 s): the link must stay usable
    after each failed exchange."""
    with ProtocolPeer() as peer, DeviceLink(peer.url, timeout=0.1) as link:
        link.identify()
        yield peer, link


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, 10), st.integers(0, 400), st.integers(1, 255), st.binary(min_size=300, max_size=300))
def test_a_damaged_reply_line_gives_the_right_result_or_an_error_never_a_wrong_one(damaging_peer, line_index,
                                                                                   position, mask, data):
    """One byte of one reply line of a round trip (in x3, lat, run, out x5, final out) XORed: the round trip
    returns the true output or raises TinydeployError (a lost final line times out)."""
    peer, link = damaging_peer

    def corrupt(index: int, line: bytes) -> bytes:
        if index != line_index:
            return line
        at = position % len(line)
        return line[:at] + bytes([line[at] ^ mask]) + line[at + 1:]

    peer.sent_lines, peer.corrupt = 0, corrupt
    try:
        output = round_trip(link, data)
    except TinydeployError as exc:
        assert peer.url in exc.one_line()
    else:
        assert output == xor(data)
