"""Wall time of `tinydeploy analyze` on long synthetic int8 chains (FULLY_CONNECTED ops with their own weights, built
without TensorFlow by tests/corpus/make_corpus.chain_model), by tensor count.

    .venv/bin/python bench/analyze_scale.py [TENSORS ...] [--engine native] [--cached]

Default sizes 5,000 10,000 20,000 100,000 tensors. Each run is the real CLI (`analyze --json`) with a fresh cache, so
TFLM's arena is measured (its probes are most of the time); --cached measures once, then times a second run that
reads the arena from the cache. Prints numbers, not pass/fail. The goal: time grows linearly with the tensors
(tests/test_scaling.py checks each pass's work grows linearly; this shows the seconds)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def analyze_seconds(model: Path, cache: Path, engine: str) -> tuple[float, int]:
    env = {**os.environ, "TINYDEPLOY_CACHE_DIR": str(cache), "PYTHONPATH": str(REPO)}
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-m", "tinydeploy", "analyze", str(model), "--json", "--engine", engine],
                            capture_output=True, text=True, env=env)
    if result.returncode not in (0, 1):
        raise SystemExit(f"analyze failed on {model}: {result.stderr[-400:]}")
    return time.perf_counter() - started, result.returncode


def main(argv: list[str]) -> None:
    from tests.corpus.make_corpus import chain_model, pack

    engine = "native" if "--engine" in argv and argv[argv.index("--engine") + 1] == "native" else "tflm"
    cached = "--cached" in argv
    sizes = [int(a) for a in argv if a.isdigit()] or [5_000, 10_000, 20_000, 100_000]
    print(f"{'tensors':>8} {'ops':>7} {'file MB':>8} {'seconds':>8} {'us/tensor':>10}   (analyze --engine {engine}"
          f"{', arena from the cache' if cached else ', arena measured'})")
    with tempfile.TemporaryDirectory(prefix="tinydeploy-scale-") as tmp:
        for tensors in sizes:
            ops = max(1, (tensors - 1) // 3)
            model = Path(tmp) / f"chain{tensors}.tflite"
            model.write_bytes(pack(chain_model(ops)))
            cache = Path(tmp) / f"cache{tensors}"
            if cached:
                analyze_seconds(model, cache, engine)
            seconds, _ = analyze_seconds(model, cache, engine)
            print(f"{3 * ops + 1:>8,} {ops:>7,} {model.stat().st_size / 1e6:>8.1f} {seconds:>8.1f} "
                  f"{seconds / (3 * ops + 1) * 1e6:>10.0f}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
