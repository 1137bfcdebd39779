"""The limits the firmware enforces, read once from its own headers, so the host never accepts a number the
device refuses (`run N W` of the tinydeploy protocol, `infer N W` of the MLPerf Tiny runner)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from tinydeploy.errors import TinydeployError
from tinydeploy.paths import firmware_dir

# protocol -> (header under firmware/, macro of the most timed runs, macro of the most warm-ups)
_SOURCES = {
    "tinydeploy": ("protocol/td_protocol.h", "TD_PROTOCOL_MAX_RUNS", "TD_PROTOCOL_MAX_WARMUP"),
    "mlperf-tiny": ("mlperf/td_mlperf.h", "TD_MLPERF_MAX_INFER", "TD_MLPERF_MAX_WARMUP"),
}


@dataclass(frozen=True)
class RunLimits:
    protocol: str
    max_runs: int
    max_warmup: int
    source: str  # the header they come from, for messages


def _define(text: str, name: str, header: str) -> int:
    match = re.search(rf"^\s*#\s*define\s+{name}\s+(\d+)[uUlL]*\s*$", text, re.MULTILINE)
    if match is None:
        raise TinydeployError(f"the firmware header {header} does not define {name}",
                              "reinstall tinydeploy (its firmware folder is incomplete)")
    return int(match.group(1))


@lru_cache(maxsize=None)
def run_limits(protocol: str = "tinydeploy") -> RunLimits:
    """The bounds of one benchmark request for a firmware speaking `protocol`."""
    relative, runs_name, warmup_name = _SOURCES[protocol]
    header = firmware_dir() / relative
    try:
        text = header.read_text()
    except OSError as exc:
        raise TinydeployError(f"cannot read the firmware header {header}: {exc.strerror}",
                              "reinstall tinydeploy (its firmware folder is incomplete)") from exc
    return RunLimits(protocol, _define(text, runs_name, relative), _define(text, warmup_name, relative), relative)


def check_run_counts(runs: int, warmup: int, protocol: str = "tinydeploy", device_max_runs: int | None = None) -> None:
    """Refuses, before anything is sent, a run or warm-up count the device would refuse. `device_max_runs` is
    what a running device reported (a firmware built with another TD_PROTOCOL_MAX_RUNS)."""
    limits = run_limits(protocol)
    max_runs = limits.max_runs if device_max_runs is None else device_max_runs
    if runs < 1 or runs > max_runs:
        raise TinydeployError(f"--runs {runs} is outside what the device accepts (1 to {max_runs:,} timed runs, "
                              f"{limits.source})", f"give --runs between 1 and {max_runs:,}; repeat the command for "
                              "more samples")
    if warmup < 0 or warmup > limits.max_warmup:
        raise TinydeployError(f"--warmup {warmup} is outside what the device accepts (0 to {limits.max_warmup:,} "
                              f"warm-ups, {limits.source})", f"give --warmup between 0 and {limits.max_warmup:,}")
