"""`tinydeploy lab check`: find the boards, flash each with a self-test firmware, run it, one verdict per board.

The self-test model is tinydeploy's own sine MLP (tinydeploy.hil.models: built without TensorFlow or any
file), so the check needs nothing but tinydeploy. A board passes when it boots, runs the model that was
flashed, gives host TFLM's outputs byte for byte on fixed inputs (which are also ~sin(x)), and answers the
timing and RAM commands. Boards run in parallel threads; one failing never stops the others.
"""

from __future__ import annotations

import csv
import io
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tinydeploy.boards import all_boards, get_board
from tinydeploy.errors import TinydeployError

Progress = Callable[[int, str], None]
SELF_TEST_POINTS = np.linspace(0.25, 6.0, 8)  # x values of the known inputs
SINE_TOLERANCE = 0.05


@dataclass
class LabResult:
    index: int
    port: str
    serial_number: str
    board: str
    status: str  # PASS or FAIL
    reason: str
    latency_us: float | None = None
    free_ram_bytes: int | None = None
    seconds: float = 0.0
    exporter: str = ""  # the farm exporter the board hangs off (boards checked through labgrid places)

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def find_usb_boards(boards=None, ports=None):
    """The runners of every supported board on USB, and the ports whose USB id several profiles share
    (tinydeploy.runners.discover_runners over the board profiles)."""
    from tinydeploy.runners import discover_runners

    return discover_runners(list((boards or all_boards()).values()), ports)


def self_test_inputs(model) -> tuple[list[bytes], list[bytes]]:
    """The fixed inputs and host TFLM's outputs for them (checked against sin(x), so the host is checked too)."""
    from tinydeploy.golden import tflm_outputs
    from tinydeploy.hil.models import dequantize_output, quantize_input

    inputs = [quantize_input(model, np.array([[x]])) for x in SELF_TEST_POINTS]
    expected = tflm_outputs(model, inputs)
    values = np.array([dequantize_output(model, out)[0] for out in expected])
    if np.abs(values - np.sin(SELF_TEST_POINTS)).max() > SINE_TOLERANCE:
        raise TinydeployError("host TFLM computes the self-test model wrongly", "reinstall tflite-micro")
    return inputs, expected


def _kill_board(runner) -> None:
    """Fault injection for testing the check itself: kill the board as a crash would (emulated boards only)."""
    kill = getattr(runner, "kill", None)
    if kill is not None:
        kill()


def _check_one(index: int, runner, firmware, inputs: list[bytes], expected: list[bytes], runs: int,
               progress: Progress, inject_kill: bool) -> LabResult:
    from tinydeploy.flow import Device

    board = firmware.board
    result = LabResult(index, runner.label, runner.serial_number, board.name, "FAIL", "")
    started = time.monotonic()
    device = None
    try:
        progress(index, "flashing")
        device = Device.start(firmware, runner, ready_timeout=20.0 if runner.caps.emulated else 30.0)
        if inject_kill:
            _kill_board(runner)
        progress(index, "checking outputs")
        got = device.run(inputs)
        wrong = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
        if wrong:
            raise TinydeployError(f"wrong outputs for {len(wrong)} of {len(inputs)} known inputs "
                                  f"(first: input {wrong[0]})", "the board computes wrongly: reflash it or swap it")
        progress(index, "timing")
        bench = device.bench(runs, 1, inputs[0])
        ram = device.ram()
        result.latency_us = bench.latency_us.median
        result.free_ram_bytes = ram.free_bytes
        if not ram.fits:
            raise TinydeployError(f"RAM use {ram.total_bytes} B exceeds the board's {ram.board_bytes} B",
                                  "the board profile may be wrong")
        result.status, result.reason = "PASS", "outputs match, timing and RAM read"
    except TinydeployError as exc:
        result.reason = exc.one_line()
    except Exception as exc:  # a bug must not hide the other boards' results
        result.reason = f"internal error: {type(exc).__name__}: {exc}"
    finally:
        try:
            if device is not None:
                device.close()
            else:
                runner.stop()
        except TinydeployError as exc:  # e.g. a farm place that could not be released
            result.status, result.reason = "FAIL", result.reason or exc.one_line()
        result.exporter = runner.location
        result.seconds = round(time.monotonic() - started, 2)
        progress(index, result.status if result.passed else f"FAIL: {result.reason[:100]}")
    return result


def run_lab_check(runners: list, engine: str | None = None, build_dir: Path | None = None,
                  runs: int = 10, progress: Progress = lambda i, s: None,
                  inject_kill: frozenset[int] = frozenset(), unresolved: list | None = None,
                  unreachable: list[tuple[str, str]] | None = None) -> list[LabResult]:
    """Check every board (one runner each): one self-test build per profile, then all boards in parallel. Ports in
    `unresolved` (a USB id several profiles share) get a FAIL row that says how to tell them apart; `unreachable`
    (label, reason) boards, e.g. farm places whose exporter is gone, a FAIL row with the reason."""
    from tinydeploy.flow import build_firmware
    from tinydeploy.hil.models import sine_model
    from tinydeploy.paths import cache_dir

    model = sine_model()
    inputs, expected = self_test_inputs(model)
    root = build_dir or cache_dir() / "lab-selftest"
    firmware: dict[str, object] = {}
    build_errors: dict[str, str] = {}
    for runner in runners:
        board = runner.board
        if board.name in firmware or board.name in build_errors:
            continue
        try:
            firmware[board.name] = build_firmware(model, board, engine, root / f"selftest-{board.name}")
        except TinydeployError as exc:
            build_errors[board.name] = f"self-test firmware does not build: {exc.one_line()}"

    results: list[LabResult | None] = [None] * (len(runners) + len(unresolved or []) + len(unreachable or []))
    jobs = []
    for index, runner in enumerate(runners):
        board = runner.board
        if board.name in build_errors:
            results[index] = LabResult(index, runner.label, runner.serial_number, board.name, "FAIL",
                                       build_errors[board.name])
            progress(index, f"FAIL: {build_errors[board.name][:100]}")
        else:
            jobs.append((index, runner, firmware[board.name]))
    for index, port in enumerate(unresolved or [], start=len(runners)):
        results[index] = LabResult(index, port.port, port.serial_number, " or ".join(port.boards), "FAIL",
                                   unresolved_reason(port))
        progress(index, f"FAIL: {results[index].reason[:100]}")
    for index, (label, reason) in enumerate(unreachable or [], start=len(runners) + len(unresolved or [])):
        results[index] = LabResult(index, label, "", "-", "FAIL", reason)
        progress(index, f"FAIL: {reason[:100]}")
    if jobs:
        with ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="lab-check") as pool:
            futures = {pool.submit(_check_one, index, target, fw, inputs, expected, runs, progress,
                                   index in inject_kill): index for index, target, fw in jobs}
            for future, index in futures.items():
                results[index] = future.result()
    return [r for r in results if r is not None]


def unresolved_reason(port) -> str:
    return (f"USB id shared by the profiles {', '.join(port.boards)}: which board this is cannot be told from the "
            f"port; check it with `tinydeploy lab check --board NAME` (USB serial {port.serial_number or 'unknown'} "
            "tells the boards apart in this table)")


def virtual_runners(count: int, board_name: str = "virtual") -> list:
    from tinydeploy.runners import runner_for

    board = get_board(board_name)
    if not runner_for(board).caps.emulated:
        raise TinydeployError(f"{board.name} is not an emulated board", "pass the name of one, e.g. virtual")
    return [runner_for(board, index=i) for i in range(count)]


def place_runners(places: list[str], coordinator: str | None = None, board=None,
                  acquire_timeout: float | None = None) -> tuple[list, list[tuple[str, str]]]:
    """The runners of a board farm's places, and (place, reason) for those that cannot be reached now."""
    from tinydeploy.runners import runner_for_place

    runners, unreachable = [], []
    for place in dict.fromkeys(places):
        try:
            runners.append(runner_for_place(place, coordinator, board, acquire_timeout))
        except TinydeployError as exc:
            if "labgrid is not installed" in exc.message or "cannot reach labgrid coordinator" in exc.message:
                raise
            unreachable.append((place, exc.one_line()))
    return runners, unreachable


CSV_FIELDS = ("port", "serial_number", "board", "status", "reason", "latency_us", "free_ram_bytes", "seconds",
              "exporter")


def results_csv(results: list[LabResult]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for result in results:
        writer.writerow(asdict(result))
    return out.getvalue()


def results_json(results: list[LabResult]) -> dict:
    return {"passed": sum(r.passed for r in results), "failed": sum(not r.passed for r in results),
            "boards": [{k: v for k, v in asdict(r).items() if k != "index"} for r in results]}


class ProgressLines:
    """One line per board, updated in place on a terminal (rich Live), printed once at the end otherwise."""

    def __init__(self, labels: list[str], console) -> None:
        from rich.live import Live

        self._labels = labels
        self._states = ["waiting"] * len(labels)
        self._lock = threading.Lock()
        self._live = Live(self._render(), console=console, refresh_per_second=8, transient=False)

    def _render(self):
        from rich.text import Text

        width = max((len(label) for label in self._labels), default=0)
        return Text("\n".join(f"{label:<{width}}  {state}" for label, state in zip(self._labels, self._states)))

    def update(self, index: int, state: str) -> None:
        with self._lock:
            self._states[index] = state
            self._live.update(self._render())

    def __enter__(self) -> ProgressLines:
        self._live.__enter__()
        return self

    def __exit__(self, *exc_info) -> None:
        self._live.__exit__(*exc_info)
