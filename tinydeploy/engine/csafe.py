"""C-safe text for the engine's generated sources (one implementation, in tinydeploy.emit.cstrings)."""

from tinydeploy.emit.cstrings import MAX_COMMENT_CHARS, c_comment
from tinydeploy.emit.cstrings import c_string_literal as c_string

__all__ = ["MAX_COMMENT_CHARS", "c_comment", "c_string"]
