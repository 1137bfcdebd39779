"""The Arduino TFLM library a sketch builds with: the pinned download, or a local copy.

The Arduino TFLM library is tensorflow/tflite-micro-arduino-examples, pinned to one commit. A local copy
(--tflm-lib PATH or $TINYDEPLOY_TFLM_LIB) replaces the download: needed where GitHub is unreachable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tinydeploy.errors import TinydeployError
from tinydeploy.net import host_reachable

TFLM_LIBRARY_NAME = "Arduino_TensorFlowLite"
TFLM_LIBRARY_REPO = "https://github.com/tensorflow/tflite-micro-arduino-examples.git"
# The last commit of the library (2023-12-22; its last sync from tflite-micro is bd7e861, 2023-02-27).
TFLM_LIBRARY_COMMIT = "7948b85e020470a30a83bf00e10fc43b486bfcba"
# The version its library.properties gives at that commit.
TFLM_LIBRARY_VERSION = "2.4.0-ALPHA"
TFLM_LIBRARY_DEPS = f"{TFLM_LIBRARY_NAME}={TFLM_LIBRARY_REPO}#{TFLM_LIBRARY_COMMIT}"
TFLM_LIB_ENV = "TINYDEPLOY_TFLM_LIB"
GITHUB_HOST = "github.com"


@dataclass(frozen=True)
class TflmLibrary:
    local_path: Path | None  # a local copy of the library (its root: library.properties, src/)

    @property
    def properties_version(self) -> str:
        """The version line of its library.properties (the pinned commit's for the download)."""
        if self.local_path is not None:
            try:
                for line in (self.local_path / "library.properties").read_text().splitlines():
                    if line.startswith("version="):
                        return line.split("=", 1)[1].strip()
            except OSError:
                pass
            return "unknown"
        return TFLM_LIBRARY_VERSION

    @property
    def version(self) -> str:
        """Identifies the library's code for caches: the pinned commit, or the local copy's version line."""
        if self.local_path is None:
            return TFLM_LIBRARY_COMMIT[:12]
        try:
            for line in (self.local_path / "library.properties").read_text().splitlines():
                if line.startswith("version="):
                    return "local-" + line.split("=", 1)[1].strip()
        except OSError:
            pass
        return "local"


def resolve_tflm_library(path: str | Path | None = None) -> TflmLibrary:
    """The library to build with: PATH, else $TINYDEPLOY_TFLM_LIB, else the pinned download."""
    chosen = path or os.environ.get(TFLM_LIB_ENV) or None
    if chosen is None:
        return TflmLibrary(None)
    root = Path(chosen).expanduser().resolve()
    if (root / TFLM_LIBRARY_NAME / "src" / "TensorFlowLite.h").is_file():
        root = root / TFLM_LIBRARY_NAME  # the folder that holds the library was given
    if not (root / "src" / "TensorFlowLite.h").is_file():
        raise TinydeployError(f"{chosen} is not the Arduino TFLM library (no src/TensorFlowLite.h)",
                              f"give the root of a copy of {TFLM_LIBRARY_REPO.removesuffix('.git')} "
                              f"(e.g. git clone it; commit {TFLM_LIBRARY_COMMIT[:7]} is the tested one)")
    return TflmLibrary(root)


def github_reachable(timeout: float = 3.0) -> bool:
    return host_reachable(GITHUB_HOST, timeout=timeout)


def tflm_library_unreachable(other_engine: str | None = "native") -> TinydeployError:
    """`other_engine`: an engine that runs the model without the library (None: no way out but a local copy)."""
    local = f"--tflm-lib PATH (or ${TFLM_LIB_ENV}) to a local copy of {TFLM_LIBRARY_REPO.removesuffix('.git')}"
    return TinydeployError("the TFLM engine needs the Arduino TFLM library, which PlatformIO downloads from GitHub, "
                           "and GitHub is unreachable (no internet?)",
                           f"use --engine {other_engine}, or {local}" if other_engine else f"give {local}")

