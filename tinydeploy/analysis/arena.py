"""Measure TFLM's minimum tensor arena with TFLM's own allocator, and estimate it for a 32-bit target.

TFLM (the `tflite_micro` package) can segfault or abort() on too-small arenas, so every probe runs in
a worker subprocess that is restarted after a crash; at most one worker runs at a time.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

from pydantic import Field

from tinydeploy.analysis.memory import activation_profile
from tinydeploy.cache import Entry
from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel

MAX_ARENA_BYTES = 256 * 1024 * 1024
PROBE_TIMEOUT_S = 120.0
MAX_PROBES = 80
SEARCH_SECONDS = 60.0  # probing time after which the search settles for the smallest size known to fit
ALIGNMENT_WINDOW = 32  # how much less than TFLM's reported total an arena may fit with (its start's alignment)
# Bytes a 32-bit build of TFLM saves over the 64-bit host build, measured (FACTS.md):
# pointers and size_t in TfLiteTensor/TfLiteEvalTensor (per tensor) and node/registration data (per op).
HOST_TO_TARGET_PER_TENSOR = 12
HOST_TO_TARGET_PER_OP = 46
HOST_TO_TARGET_FIXED = 270
# Slack for alignment and for allocations that differ between TFLM builds: the margin a sketch gets over a measured
# arena (512 B, rounded up to 16 B: tinydeploy.tflm.arena) plus the 32-bit conversion's error (~115 B), so that the
# estimate before a measurement is not below the arena flash then builds with (KWS: 32 B below it with 512 B).
TARGET_SLACK_BYTES = 640


@dataclass(frozen=True)
class ArenaEstimate:
    host_bytes: int | None  # measured minimum on the 64-bit host (None: TFLM could not run the model)
    target_bytes: int  # 32-bit estimate of the same arena
    kernel_margin_bytes: int  # scratch that the target's optimized kernels (CMSIS-NN) may request, plus slack
    probes: int
    measured: bool
    note: str = ""

    @property
    def recommended_bytes(self) -> int:
        """What to give kTensorArenaSize on the target."""
        return self.target_bytes + self.kernel_margin_bytes

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ArenaEstimate":
        return cls(**data)

    def consistent_with(self, model: TfliteModel) -> bool:
        """Whether these figures can be this model's: everything but the measured host arena follows from the
        model, and that is at least the activation lower bound. A cached entry that is not is measured again."""
        floor = activation_profile(model).peak_bytes
        if self.kernel_margin_bytes != cmsis_nn_scratch_bytes(model) + TARGET_SLACK_BYTES:
            return False
        if not self.measured:
            return self.host_bytes is None and self.target_bytes == floor
        return self.host_bytes is not None and floor <= self.host_bytes <= MAX_ARENA_BYTES and \
            self.target_bytes == host_to_target_bytes(model, self.host_bytes)


ArenaBytes = Annotated[int, Field(ge=0, le=MAX_ARENA_BYTES)]


class ArenaEntry(Entry):
    """ArenaEstimate as the cache keeps it (types and ranges checked when read back)."""

    host_bytes: Annotated[int, Field(ge=1, le=MAX_ARENA_BYTES)] | None
    target_bytes: ArenaBytes
    kernel_margin_bytes: ArenaBytes
    probes: Annotated[int, Field(ge=0, le=MAX_PROBES)]
    measured: bool
    note: Annotated[str, Field(max_length=2000)]


class _Prober:
    """One worker at a time; a crash counts as a failed size and the worker is started again."""

    def __init__(self, model_path: Path):
        self.model_path = model_path
        self.proc: subprocess.Popen | None = None
        self.probes = 0
        self.last_failure = ""
        self.cut_short = 0  # bytes between the last size that failed and the one returned, when stopped early

    def _start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tinydeploy.analysis.arena_probe", str(self.model_path)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        if self.proc.stdout.readline().strip() != "ready":
            self.close()
            raise TinydeployError("the TFLM probe process did not start",
                                  "check that the tflite-micro package is installed (pip install tflite-micro)")

    def fits(self, size: int, mode: str) -> bool:
        if self.probes >= MAX_PROBES:
            raise TinydeployError("arena search did not converge", "report this model as a bug")
        self.probes += 1
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        assert self.proc and self.proc.stdin and self.proc.stdout
        try:
            self.proc.stdin.write(f"{mode} {size}\n")
            self.proc.stdin.flush()
            answer = _readline_with_timeout(self.proc, PROBE_TIMEOUT_S)
        except (BrokenPipeError, TimeoutError):
            answer = ""
        if answer.startswith("ok"):
            return True
        if not answer:  # crashed (segfault, abort) or hung: restart next time
            self.close()
            self.last_failure = "TFLM crashed"
        else:
            self.last_failure = answer.removeprefix("fail").strip()
        return False

    def used(self, size: int) -> int:
        """The arena TFLM's recording allocator reports taking when given `size` bytes (0: unknown)."""
        if self.probes >= MAX_PROBES:
            return 0
        self.probes += 1
        if self.proc is None or self.proc.poll() is not None:
            self._start()
        try:
            self.proc.stdin.write(f"used {size}\n")
            self.proc.stdin.flush()
            answer = _readline_with_timeout(self.proc, PROBE_TIMEOUT_S)
        except (BrokenPipeError, TimeoutError):
            self.close()
            return 0
        parts = answer.split()
        return int(parts[1]) if len(parts) == 2 and parts[0] == "ok" and parts[1].isdigit() else 0

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                if stream:
                    try:
                        stream.close()
                    except OSError:
                        pass
            self.proc = None


def _readline_with_timeout(proc: subprocess.Popen, timeout: float) -> str:
    import selectors

    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout):
            raise TimeoutError
    return proc.stdout.readline().strip()


def host_to_target_bytes(model: TfliteModel, host_bytes: int) -> int:
    saved = (HOST_TO_TARGET_PER_TENSOR * len(model.tensors) + HOST_TO_TARGET_PER_OP * len(model.operators)
             + HOST_TO_TARGET_FIXED)
    floor = activation_profile(model).peak_bytes
    return max(host_bytes - saved, floor)


def cmsis_nn_scratch_bytes(model: TfliteModel) -> int:
    """Largest scratch buffer CMSIS-NN's kernels request for one op (im2col of int16 for convolutions,
    int16 line buffers for depthwise, int32 sums for average pooling); TFLM's reference kernels need none."""
    largest = 0
    for op in model.operators:
        if len(op.inputs) < 1:
            continue
        source = model.tensors[op.inputs[0]]
        if op.op in ("CONV_2D", "DEPTHWISE_CONV_2D") and len(op.inputs) > 1:
            filt = model.tensors[op.inputs[1]].shape
            if len(filt) != 4:
                continue
            _, kh, kw, ic = filt
            if op.op == "CONV_2D":
                pointwise = kh == 1 and kw == 1
                scratch = 0 if pointwise else 2 * ic * kh * kw * 2
            else:
                scratch = source.shape[-1] * kh * kw * 2
        elif op.op == "AVERAGE_POOL_2D":
            scratch = source.shape[-1] * 4
        else:
            scratch = 0
        largest = max(largest, scratch)
    return largest


def _bisect(prober: _Prober, low: int, high: int, mode: str, deadline: float | None = None) -> int:
    """Smallest size in (low, high] that fits, given that low does not and high does; once past `deadline`,
    the smallest size known to fit (an upper bound of it, within high - low bytes: see prober.cut_short)."""
    while high - low > 1:
        if deadline is not None and time.monotonic() > deadline:
            prober.cut_short = max(prober.cut_short, high - low)
            break
        middle = (low + high) // 2
        if prober.fits(middle, mode):
            high = middle
        else:
            low = middle
    return high


def measure_tflm_arena(model: TfliteModel) -> ArenaEstimate:
    """Smallest arena with which TFLM allocates and invokes the model, found by bisection.

    The search bisects on allocation alone (fast), then checks that the model also invokes at that
    size and moves up if it does not (scratch buffers requested during Prepare can need more)."""
    margin = cmsis_nn_scratch_bytes(model) + TARGET_SLACK_BYTES
    lower_bound = activation_profile(model).peak_bytes
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tinydeploy-arena-") as tmp:
        model_path = Path(tmp) / "model.tflite"
        model_path.write_bytes(model.raw)
        prober = _Prober(model_path)
        try:
            # a first size that usually fits: TFLM keeps ~100 B per tensor and per op besides the activations
            high = max(4096, 2 * lower_bound + 16 * 1024 + 128 * len(model.tensors) + 256 * len(model.operators))
            while not prober.fits(high, "alloc"):
                if high >= MAX_ARENA_BYTES:
                    return _unmeasured(model, margin, prober)
                high = min(high * 2, MAX_ARENA_BYTES)
            low = max(lower_bound - 1, 0)
            if low and prober.fits(low, "alloc"):
                low = 0
            # TFLM says what it took at that size; the minimum is that or a few bytes more (alignment), so two
            # probes usually settle it where bisecting the whole range took ~20 (each a full allocation)
            taken = prober.used(high)
            if low < taken < high:
                if prober.fits(taken, "alloc"):
                    high = taken  # less may do as well, by the alignment of the arena's start: 32 B at most
                    for below in (taken - 1, taken - ALIGNMENT_WINDOW):
                        if below > low and not prober.fits(below, "alloc"):
                            low = below
                            break
                else:  # buffers held only during Prepare come on top: a quarter more, else twice, usually do
                    low = taken
                    for guess in (taken + max(64, taken // 4), 2 * taken):
                        if not low < guess < high:
                            continue
                        if prober.fits(guess, "alloc"):
                            high = guess
                            break
                        low = guess
            # each probe allocates the whole model: on a huge graph the search stops at a bounded time, with a
            # size that fits (an upper bound, said in the note) rather than the last byte
            high = _bisect(prober, low, high, "alloc", started + SEARCH_SECONDS)
            # Invoke at the allocation minimum; if invoking needs more, search upwards for it.
            if not prober.fits(high, "invoke"):
                low = high
                step = 1024
                while not prober.fits(low + step, "invoke"):
                    if low + step >= MAX_ARENA_BYTES:
                        return _unmeasured(model, margin, prober)
                    low, step = low + step, step * 2
                high = _bisect(prober, low, low + step, "invoke", started + SEARCH_SECONDS)
            note = (f"the search stopped after {SEARCH_SECONDS:g} s of probes (a large graph): the arena is an upper "
                    f"bound, within {prober.cut_short:,} B of the minimum" if prober.cut_short else "")
            return ArenaEstimate(high, host_to_target_bytes(model, high), margin, prober.probes, True, note)
        finally:
            prober.close()


def _unmeasured(model: TfliteModel, margin: int, prober: _Prober) -> ArenaEstimate:
    """TFLM cannot run this model at any size: fall back to the activation lower bound and say why."""
    reason = prober.last_failure or "unknown failure"
    return ArenaEstimate(None, activation_profile(model).peak_bytes, margin, prober.probes, False,
                         f"TFLM could not allocate and invoke this model ({reason}); the arena shown is the "
                         "activation lower bound")
