"""The Jinja environment every generated file comes from."""

from __future__ import annotations

from functools import lru_cache

import jinja2

from tinydeploy.emit.cstrings import c_comment, c_string_literal
from tinydeploy.paths import templates_dir


def ini_value(text: object) -> str:
    """A value safe on one line of platformio.ini (printable ASCII, no newlines, no comment starters)."""
    clean = "".join(ch if 32 <= ord(ch) < 127 else "?" for ch in str(text))
    return " ".join(clean.replace(";", ",").replace("#", "").split())


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["c_comment"] = c_comment
    env.filters["c_string"] = c_string_literal
    env.filters["ini"] = ini_value
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
