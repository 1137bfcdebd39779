"""Any text as a C string literal that compiles to exactly its UTF-8 bytes.

Printable ASCII stays readable; quotes, backslashes and '?' (trigraphs) are escaped; everything else,
newlines and non-ASCII included, becomes a three-digit octal escape (octal, unlike \\x, never swallows the
digits that follow). '/' after '*' and '*' after '/' are escaped too, so the literal is harmless even
inside a comment.
"""

from __future__ import annotations

_SIMPLE = {'"': '\\"', "\\": "\\\\", "?": "\\?"}


def c_string_literal(text: object) -> str:
    out = ['"']
    previous = 0
    for byte in str(text).encode("utf-8"):
        char = chr(byte)
        if char in _SIMPLE:
            out.append(_SIMPLE[char])
        elif 0x20 <= byte < 0x7F and not (char == "/" and previous == ord("*")) \
                and not (char == "*" and previous == ord("/")):
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
        previous = byte
    out.append('"')
    return "".join(out)


MAX_COMMENT_CHARS = 120


def c_comment(text: object, limit: int = MAX_COMMENT_CHARS) -> str:
    """User text made safe inside a C /* */ or // comment: printable ASCII, no delimiters, one line, bounded."""
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    clean = clean.replace("\\", "/")  # a trailing backslash would splice lines in a // comment
    clean = clean.replace("??", "?-")  # and so would the trigraph ??/ where trigraphs are on (-std=c11)
    while "*/" in clean or "/*" in clean:
        clean = clean.replace("*/", "* /").replace("/*", "/ *")
    if len(clean) > limit:
        clean = clean[: limit - 3] + "..."
    return clean
