"""The protocol's wire format as pure functions (docs/protocol.md).

Command (host -> device):  ``td <id> <verb> [args]*<CRC32>\\n``
Reply   (device -> host):  ``@td <id> <kind> [tokens]*<CRC32>\\r\\n``

The CRC-32 is zlib's, over every byte before the ``*``, written as 8 upper-case hex digits. A line without
the ``@td `` prefix is noise (boot messages, a debugger's output); a line with it whose checksum or
structure is wrong is corrupt. Both are skipped by the link, never trusted.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

COMMAND_PREFIX = b"td "
REPLY_PREFIX = b"@td "
REPLY_KINDS = ("ok", "err", "data", "ready")
MAX_REPLY_LINE = 4096  # longer "lines" are noise: the device never sends them

_ID = re.compile(rb"^(?:-|[0-9]{1,9})$")
_CRC = re.compile(rb"^[0-9A-F]{8}$")  # the device writes upper case: a case-flipped digit is a bit error
_COMMAND_WORD = re.compile(r"^[!-~]+$")  # printable ASCII without spaces
_UNPRINTABLE = re.compile(rb"[^ -~]")


class FrameError(ValueError):
    """A line that is not a valid reply."""


class NoiseLine(FrameError):
    """No reply prefix: output that is not the protocol's."""


class CorruptLine(FrameError):
    """Has the prefix but a wrong checksum or structure: damaged in transit."""


def crc32_hex(data: bytes) -> str:
    return f"{zlib.crc32(data) & 0xFFFFFFFF:08X}"


def frame(body: bytes) -> bytes:
    """``body*CRC`` without the line end."""
    return body + b"*" + crc32_hex(body).encode()


def encode_command(command_id: int, verb: str, *args: object) -> bytes:
    """One command line, newline-terminated; a blank line goes first so bytes left over in the device's
    line buffer (noise, a half-sent command) cannot merge with it."""
    if not 0 < command_id < 10**9:
        raise ValueError(f"command id out of range: {command_id}")
    words = [verb, *map(str, args)]
    for word in words:
        if not _COMMAND_WORD.match(word) or "*" in word or "%" in word:
            raise ValueError(f"command word must be printable ASCII without spaces, '*' or '%': {word!r}")
    body = COMMAND_PREFIX + f"{command_id} {' '.join(words)}".encode("ascii")
    return b"\n" + frame(body) + b"\n"


def escape_value(text: str) -> str:
    """The device's value escaping (for tests and tools that speak the device side)."""
    out = []
    for byte in text.encode("utf-8"):
        if byte <= 0x20 or byte >= 0x7F or byte in b"%*=":
            out.append(f"%{byte:02X}")
        else:
            out.append(chr(byte))
    return "".join(out)


def printable(text: str, limit: int = 200) -> str:
    """A device-provided string made safe to print: control and formatting characters (terminal escapes, bidi
    overrides) spelled as Python escapes, at most `limit` characters."""
    safe = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text[:limit])
    return safe + ("..." if len(text) > limit else "")


def unescape_value(text: str) -> str:
    raw = re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), text.encode("utf-8"))
    return raw.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Reply:
    """One validated reply line: ``@td <id> <kind> <name> <args...> <key=value...>``."""

    id: str  # the command's id, or "-" for unsolicited lines (ready, errors about unparsable input)
    kind: str  # ok | err | data | ready
    name: str = ""  # the command (ok/data) or the error code (err); "" when absent
    args: tuple[str, ...] = ()
    fields: dict[str, str] = field(default_factory=dict)

    @property
    def payload(self) -> str:
        """The line as the device wrote it, without the prefix, id and checksum."""
        parts = [self.kind] + ([self.name] if self.name else []) + list(self.args)
        parts += [f"{k}={escape_value(v)}" for k, v in self.fields.items()]
        return " ".join(parts)

    def int_field(self, key: str, low: int = 0, high: int = (1 << 32) - 1) -> int:
        """The decimal field `key`, which must lie in [low, high] (by default what a uint32_t holds)."""
        text = self.fields.get(key, "")
        if not re.fullmatch(r"-?[0-9]{1,20}", text):
            raise CorruptLine(f"reply lacks integer field {key!r}: {printable(self.payload)}")
        value = int(text)
        if not low <= value <= high:
            raise CorruptLine(f"field {key}={value} is outside {low}..{high}: {printable(self.payload)}")
        return value


def encode_reply(reply_id: str, kind: str, *tokens: str) -> bytes:
    """A device reply line (the device side in Python, for tests)."""
    body = REPLY_PREFIX + " ".join([reply_id, kind, *tokens]).encode("ascii")
    return frame(body) + b"\r\n"


def _parse_framed(candidate: bytes) -> Reply:
    star = candidate.rfind(b"*")
    if star < 0 or not _CRC.match(candidate[star + 1:]):
        raise CorruptLine("no checksum")
    body = candidate[:star]
    if crc32_hex(body) != candidate[star + 1:].decode("ascii"):
        raise CorruptLine("checksum mismatch")
    if _UNPRINTABLE.search(body):
        raise CorruptLine("control or non-ASCII bytes")  # the device escapes everything outside printable ASCII
    text = body[len(REPLY_PREFIX):].decode("ascii")
    tokens = text.split(" ")
    if len(tokens) < 2 or not _ID.match(tokens[0].encode()) or tokens[1] not in REPLY_KINDS or "" in tokens:
        raise CorruptLine("bad structure")
    name = ""
    rest = tokens[2:]
    if rest and "=" not in rest[0]:
        name, rest = rest[0], rest[1:]
    args = tuple(t for t in rest if "=" not in t)
    fields = {}
    for token in rest:
        if "=" in token:
            key, _, value = token.partition("=")
            fields[key] = unescape_value(value)
    return Reply(tokens[0], tokens[1], name, args, fields)


def parse_reply(line: bytes) -> Reply:
    """Validate one received line (with or without its line end). Raises NoiseLine or CorruptLine.

    Noise may precede the prefix on the same line (a boot banner without a newline), so every occurrence
    of the prefix is tried; the first that checks out wins."""
    line = line.rstrip(b"\r\n")
    start = line.find(REPLY_PREFIX)
    if start < 0:
        raise NoiseLine("no @td prefix")
    error: CorruptLine | None = None
    while start >= 0:
        try:
            return _parse_framed(line[start:])
        except CorruptLine as exc:
            error = error or exc
        start = line.find(REPLY_PREFIX, start + 1)
    assert error is not None
    raise error


class LineSplitter:
    """Cuts a byte stream into lines at ``\\n`` (a ``\\r`` before it is dropped by the parser). Bytes that
    arrive in pieces are joined; several lines in one read are split. Memory is bounded: a line longer than
    MAX_REPLY_LINE bytes is noise (the device never sends one), so its head is cut off and reported as a line
    of its own, keeping from the last reply prefix on, so a reply after endless noise is not lost."""

    def __init__(self, max_line: int = MAX_REPLY_LINE):
        self._buffer = bytearray()
        self._max_line = max(max_line, 2 * len(REPLY_PREFIX))

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer.extend(data)
        lines = []
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                break
            lines.extend(self._cut_noise(end))
            lines.append(bytes(self._buffer[:end]))
            del self._buffer[:end + 1]
        lines.extend(self._cut_noise(len(self._buffer)))
        return lines

    def _cut_noise(self, end: int) -> list[bytes]:
        """While the line ending at `end` is over-long, cut noise off its head: up to its last reply
        prefix, or all but the bytes that may begin a prefix. Each piece is at most max_line bytes."""
        pieces = []
        partial = len(REPLY_PREFIX) - 1  # bytes at the end that may be the start of a prefix
        while end > self._max_line:
            start = self._buffer.rfind(REPLY_PREFIX, 0, end)
            cut = start if 0 < start and end - start <= self._max_line else end - partial
            cut = min(cut, self._max_line)
            pieces.append(bytes(self._buffer[:cut]))
            del self._buffer[:cut]
            end -= cut
        return pieces

    @property
    def pending(self) -> bytes:
        return bytes(self._buffer)
