"""A small JSON cache keyed by content hash (analysis results, calibrated arenas)."""

from __future__ import annotations

import json
from pathlib import Path

from tinydeploy.fsutil import atomic_write_text
from tinydeploy.paths import cache_dir


def _path(kind: str, key: str) -> Path:
    return cache_dir() / kind / f"{key}.json"


def load(kind: str, key: str) -> dict | None:
    try:
        return json.loads(_path(kind, key).read_text())
    except (OSError, ValueError):
        return None  # a missing or damaged entry is simply recomputed


def store(kind: str, key: str, data: dict) -> None:
    path = _path(kind, key)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(data, indent=1, sort_keys=True))
    except Exception:  # a read-only cache must not break the command
        pass
