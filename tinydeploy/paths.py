"""Where tinydeploy finds its own files (templates, firmware) and keeps its state."""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _resource(name: str) -> Path:
    """Templates and firmware sit beside the package in a checkout and inside it in a wheel."""
    installed = _PACKAGE / f"_{name}"
    return installed if installed.is_dir() else _PACKAGE.parent / name


def templates_dir() -> Path:
    return _resource("templates")


def firmware_dir() -> Path:
    return _resource("firmware")


def data_home() -> Path:
    """tinydeploy's own state (its PlatformIO core directory, provisioned tools); never ~/.platformio."""
    root = os.environ.get("TINYDEPLOY_HOME")
    if root:
        return Path(root)
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "tinydeploy"


def cache_dir() -> Path:
    root = os.environ.get("TINYDEPLOY_CACHE_DIR")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tinydeploy"
