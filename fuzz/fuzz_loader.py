"""Fuzz the TFLite loader for a long time: `python fuzz/fuzz_loader.py --minutes 10`.

The property (the same one tests/test_fuzz_loader.py checks for a few seconds): for any bytes, the loader and
the pure-Python analysis behind `tinydeploy analyze` either succeed or raise TinydeployError; any other
exception, or an input taking over a few seconds, is a bug. Each failing input is written to
tests/corpus/found/, where tests/test_corpus.py replays it through the CLI.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import signal
import struct
import sys
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.corpus.make_corpus import FOUND_DIR, all_cases, tiny_model_bytes  # noqa: E402
from tinydeploy.errors import TinydeployError  # noqa: E402

SECONDS_PER_INPUT = 5


def load_and_analyze(data: bytes):
    """What `tinydeploy analyze` does with a model before it starts TFLM in a worker process."""
    from tinydeploy.analysis.compute import op_costs
    from tinydeploy.analysis.memory import activation_profile, tensor_lifetimes
    from tinydeploy.engines.support import engines_support
    from tinydeploy.model.convert import model_warnings
    from tinydeploy.model.tflite import parse_tflite

    model = parse_tflite(data)
    model.classification.describe()
    op_costs(model)
    tensor_lifetimes(model)
    activation_profile(model)
    model_warnings(model)
    engines_support(model)  # the native engine's check tries every op's lowering
    return model


def failure_of(data: bytes) -> str | None:
    """None when the property holds for `data`, else the traceback of what broke it."""
    try:
        load_and_analyze(data)
    except TinydeployError as exc:
        if "\n" in exc.one_line():
            return f"a multi-line error: {exc.one_line()!r}"
    except Exception:  # the property: nothing but TinydeployError may escape
        return traceback.format_exc()
    return None


def seed_inputs() -> list[bytes]:
    """Valid models and every corpus case: mutations of near-valid inputs reach deep into the reader."""
    seeds = [tiny_model_bytes()]
    seeds += [data for name, data in sorted(all_cases().items()) if name.endswith(".tflite")]
    return seeds


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One to four random edits of the kinds that break flatbuffers: bit flips, truncation, random bytes,
    and offsets (vtable entries, table and vector offsets) replaced by small, large or negative numbers."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            out = bytearray(rng.randbytes(rng.randint(0, 64)))
            continue
        kind = rng.randrange(6)
        if kind == 0:
            bit = rng.randrange(len(out) * 8)
            out[bit // 8] ^= 1 << (bit % 8)
        elif kind == 1:
            del out[rng.randrange(len(out)):]
        elif kind == 2:
            at = rng.randrange(len(out))
            out[at:at + 4] = rng.randbytes(rng.randint(1, 4))
        elif kind == 3 and len(out) >= 4:
            at = rng.randrange(0, len(out) - 3) & ~3
            out[at:at + 4] = struct.pack("<i", rng.choice([0, 1, -1, 4, -4, 8, 1 << 30, -(1 << 31), 0x7FFFFFFF,
                                                           rng.randint(-64, 64), rng.randrange(len(out))]))
        elif kind == 4 and len(out) >= 2:
            at = rng.randrange(0, len(out) - 1) & ~1
            out[at:at + 2] = struct.pack("<H", rng.choice([0, 2, 4, 0xFFFF, rng.randrange(64)]))
        else:
            at = rng.randrange(len(out))
            out[at:at] = rng.randbytes(rng.randint(1, 16))
    if len(out) >= 8 and rng.random() < 0.9:
        out[4:8] = b"TFL3"  # keep most inputs past the identifier check
    return bytes(out)


class _Timeout(Exception):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def keep(data: bytes, reason: str) -> Path:
    FOUND_DIR.mkdir(parents=True, exist_ok=True)
    path = FOUND_DIR / f"fuzz_{hashlib.sha256(data).hexdigest()[:16]}.tflite"
    path.write_bytes(data)
    path.with_suffix(".txt").write_text(reason)
    return path


def run(minutes: float, seed: int) -> int:
    rng = random.Random(seed)
    seeds = seed_inputs()
    deadline = time.monotonic() + minutes * 60
    signal.signal(signal.SIGALRM, _on_alarm)
    tried = found = accepted = 0
    while time.monotonic() < deadline:
        data = mutate(rng.choice(seeds), rng)
        signal.alarm(SECONDS_PER_INPUT)
        try:
            reason = failure_of(data)
        except _Timeout:
            reason = f"took more than {SECONDS_PER_INPUT} s"
        finally:
            signal.alarm(0)
        tried += 1
        if reason is not None:
            found += 1
            print(f"FAIL -> {keep(data, reason)}\n{reason.strip().splitlines()[-1]}", flush=True)
        elif rng.random() < 0.01:
            try:
                load_and_analyze(data)
                accepted += 1
                seeds.append(data)  # an accepted mutant is a new place to mutate from
            except TinydeployError:
                pass
    print(f"{tried} inputs in {minutes:g} min, {found} failures, {accepted} new seeds (seed {seed})")
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock (printed at the end)")
    args = parser.parse_args(argv)
    return run(args.minutes, args.seed if args.seed is not None else time.time_ns() % (1 << 32))


if __name__ == "__main__":
    sys.exit(main())
