"""The host side of the protocol's framing: pure functions, real bytes."""

from __future__ import annotations

import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tinydeploy.link.framing import (CorruptLine, LineSplitter, NoiseLine, encode_command, encode_reply,
                                     escape_value, parse_reply, unescape_value)


def test_command_is_framed_with_crc32_of_its_body():
    line = encode_command(7, "run", 10, 2)
    assert line == b"\ntd 7 run 10 2*" + f"{zlib.crc32(b'td 7 run 10 2'):08X}".encode() + b"\n"


@pytest.mark.parametrize("bad", ["two words", "a*b", "50%", "", "caf\u00e9"])
def test_command_words_that_would_break_the_framing_are_refused(bad):
    with pytest.raises(ValueError):
        encode_command(1, "in", bad)


def test_reply_round_trip_keeps_name_args_and_escaped_fields():
    line = encode_reply("12", "ok", "id", f"model={escape_value('kws *=% model ☃')}", "in=490")
    reply = parse_reply(line)
    assert (reply.id, reply.kind, reply.name) == ("12", "ok", "id")
    assert reply.fields == {"model": "kws *=% model ☃", "in": "490"}
    assert reply.int_field("in") == 490
    assert parse_reply(encode_reply("12", "data", "lat", "0", "5", "6")).args == ("0", "5", "6")
    assert parse_reply(encode_reply("-", "ready", "proto=1")).name == ""


def test_noise_is_not_a_reply():
    for noise in (b"", b"boot: mbed OS 6\r\n", b"\x00\xff\xfe garbage", b"m-ready"):
        with pytest.raises(NoiseLine):
            parse_reply(noise)


def test_noise_before_the_prefix_on_the_same_line_is_skipped():
    line = encode_reply("3", "ok", "ram", "stack=100")
    assert parse_reply(b"partial banner " + line).fields == {"stack": "100"}
    # an earlier, fake prefix in the noise does not hide the real line
    assert parse_reply(b"@td junk " + line).name == "ram"


def test_any_single_byte_change_is_rejected():
    line = encode_reply("3", "ok", "ram", "stack=100", "heap=0").rstrip(b"\r\n")
    for index in range(len(line)):
        for replacement in (b"0", b"Z", b" "):
            damaged = line[:index] + replacement + line[index + 1:]
            if damaged == line:
                continue
            with pytest.raises((CorruptLine, NoiseLine)):
                parse_reply(damaged)


def test_truncated_line_and_wrong_structure_are_corrupt():
    line = encode_reply("3", "ok", "run", "n=1")
    with pytest.raises(CorruptLine):
        parse_reply(line[:-5])
    with pytest.raises(CorruptLine):  # valid checksum, unknown kind
        parse_reply(b"@td 3 maybe x*" + f"{zlib.crc32(b'@td 3 maybe x'):08X}".encode())


def test_splitter_joins_split_lines_and_splits_merged_ones():
    a, b, c = (encode_reply("1", "data", "lat", "0", str(n)) for n in (1, 2, 3))
    stream = b"noise\r\n" + a + b + c
    splitter = LineSplitter()
    lines = []
    for start in range(0, len(stream), 7):  # odd-sized pieces cut lines anywhere
        lines += splitter.feed(stream[start:start + 7])
    assert [ln + b"\n" for ln in lines[1:]] == [a, b, c]
    assert splitter.pending == b""


def test_splitter_cuts_endless_lines():
    splitter = LineSplitter(max_line=100)
    lines = splitter.feed(b"x" * 250)
    assert [len(line) for line in lines] == [100, 100]
    assert len(splitter.pending) == 50


@given(st.text())
def test_value_escaping_round_trips_any_text(text):
    escaped = escape_value(text)
    assert " " not in escaped and "*" not in escaped and "=" not in escaped
    assert escaped.isascii() and escaped.isprintable()
    assert unescape_value(escaped) == text


@given(st.binary(max_size=300))
def test_random_bytes_never_parse_as_a_reply(data):
    with pytest.raises((NoiseLine, CorruptLine)):
        parse_reply(data)
