"""A small JSON cache keyed by content hash (measured arenas).

Nothing read back is trusted: an entry records what it was made with (the model's hash, tool versions) and is
validated on load against a schema (types, ranges, no NaN); a missing, damaged, foreign or stale entry is
simply recomputed and overwritten. A cache that cannot be written never breaks a command.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from tinydeploy.fsutil import atomic_write_text
from tinydeploy.paths import cache_dir

FORMAT = 2
MAX_ENTRY_BYTES = 1 << 20  # entries are a few hundred bytes; a bigger file is not one of them


class Entry(BaseModel):
    """Base of every cache schema: exact types (no "12" for 12, no true for 1), no unknown fields, no NaN."""

    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False, frozen=True)


Schema = TypeVar("Schema", bound=Entry)


def _path(kind: str, key: str) -> Path:
    return cache_dir() / kind / f"{key}.json"


def _read(path: Path) -> bytes | None:
    """The entry's bytes, or None for anything that is not a small regular file (a FIFO would block)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = handle.read(MAX_ENTRY_BYTES + 1)
        except OSError:
            return None
    return data if len(data) <= MAX_ENTRY_BYTES else None


def load(kind: str, key: str, schema: type[Schema], made_with: dict[str, str]) -> Schema | None:
    """The entry `kind/key` if it is whole, made with exactly `made_with`, and valid under `schema`; else None."""
    data = _read(_path(kind, key))
    if data is None:
        return None
    try:
        record = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or record.get("kind") != kind or \
            record.get("key") != key or record.get("made_with") != made_with:
        return None
    try:
        return schema.model_validate(record.get("data"))
    except ValidationError:
        return None


def store(kind: str, key: str, value: Entry, made_with: dict[str, str]) -> None:
    path = _path(kind, key)
    record = {"format": FORMAT, "kind": kind, "key": key, "made_with": made_with, "data": value.model_dump()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(record, indent=1, sort_keys=True, allow_nan=False))
    except Exception:  # a read-only or full cache must not break the command
        pass
