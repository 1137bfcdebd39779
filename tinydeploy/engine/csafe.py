"""Turn user text (tensor and model names) into C comment text or C string literals that cannot break the C."""

from __future__ import annotations

MAX_COMMENT_CHARS = 120


def c_comment(text: object, limit: int = MAX_COMMENT_CHARS) -> str:
    """Printable ASCII only, no comment delimiters, one line, bounded length."""
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    while "*/" in clean or "/*" in clean:
        clean = clean.replace("*/", "* /").replace("/*", "/ *")
    clean = clean.replace("\\", "/")  # a trailing backslash would splice lines in a // comment
    if len(clean) > limit:
        clean = clean[: limit - 3] + "..."
    return clean


def c_string(text: object) -> str:
    """A double-quoted C string literal; everything outside printable ASCII becomes an octal escape."""
    out = []
    for byte in str(text).encode("utf-8"):
        ch = chr(byte)
        if ch in '"\\':
            out.append("\\" + ch)
        elif 32 <= byte < 127 and ch != "?":  # '?' escaped too: no trigraphs
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'
