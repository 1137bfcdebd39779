"""`tinydeploy lab check --kit NAME`: every board of a classroom kit gets one self-test firmware (the sine model and
the kit's sensor driver, firmware/kit/td_kit.cpp) and one row: board revision, the model self-test, each sensor,
the USB serial number. PASS/FAIL per part with the reason.

The firmware is built for the kit's default revision; a board whose sensor bus shows the other revision is flashed
again with that revision's firmware (the two IMU libraries cannot share one). Virtual kits (lab check --virtual N)
run on QEMU with simulated sensors fed from the host (tinydeploy.sensors), alternately Rev2 and Rev1; every figure
they report is a simulation and is labelled so.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.kits import Kit, Revision

Progress = Callable[[int, str], None]
PART_COLUMNS = ("revision", "model", "imu", "microphone", "camera", "button")


@dataclass
class PartResult:
    status: str  # PASS, FAIL, or SKIP (not checked)
    reason: str
    figures: dict = field(default_factory=dict)
    short: str = ""  # the key figure of a pass, for a table cell

    @property
    def passed(self) -> bool:
        return self.status == "PASS"


def passed(reason: str, short: str = "", **figures) -> PartResult:
    return PartResult("PASS", reason, figures, short)


def failed(reason: str, **figures) -> PartResult:
    return PartResult("FAIL", reason, figures)


@dataclass
class KitResult:
    index: int
    port: str
    serial_number: str
    board: str
    kit: str
    simulated: bool
    revision: str = ""
    parts: dict[str, PartResult] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.parts) and all(part.status != "FAIL" for part in self.parts.values())

    @property
    def status(self) -> str:
        return "PASS" if self.passed else "FAIL"

    @property
    def reason(self) -> str:
        """The failed parts and why, in one line."""
        return "; ".join(f"{name}: {part.reason}" for name, part in self.parts.items() if part.status == "FAIL")


# ---- one part's verdict from what the board sent (no hardware needed to test these) --------------------------


def check_imu(reading, settings: dict) -> PartResult:
    if reading is None:
        return failed("IMU.begin() failed: the IMU does not answer")
    count = len(reading.accel_g)
    if count < reading.requested:
        return failed(f"{count} of {reading.requested} samples arrived: the IMU's data stream stopped")
    magnitude = float(np.linalg.norm(reading.accel_g, axis=1).mean())
    rest, tolerance = float(settings.get("rest_g", 1.0)), float(settings.get("tolerance", 0.15))
    figures = {"accel_g": round(magnitude, 4), "gyro_dps": [round(float(v), 2) for v in reading.gyro_dps.mean(0)]}
    if abs(magnitude - rest) > rest * tolerance:
        return failed(f"at rest |a| = {magnitude:.3f} g, not {rest:g} g +- {tolerance:.0%}: let the board lie still; "
                      "if it does, the accelerometer is faulty", **figures)
    if reading.magnet_ut is None:
        return failed(f"|a| = {magnitude:.3f} g, but no magnetometer sample arrived", **figures)
    figures["magnet_ut"] = [round(float(v), 1) for v in reading.magnet_ut]
    return passed(f"|a| = {magnitude:.3f} g at rest, gyroscope and magnetometer read", f"{magnitude:.3f} g",
                  **figures)


def check_microphone(recording, settings: dict) -> PartResult:
    if recording is None:
        return failed("PDM.begin() failed")
    count = len(recording.samples)
    if count < recording.requested:
        return failed(f"{count} of {recording.requested} samples arrived: the microphone's data stopped")
    rms = float(np.std(recording.samples.astype(np.float64)))  # AC: a stuck line's constant counts for nothing
    floor = float(settings.get("min_rms", 4.0))
    figures = {"rms": round(rms, 1), "rate_hz": recording.rate_hz}
    if rms <= floor:
        return failed(f"RMS {rms:.1f} LSB, at a silent pin's noise floor ({floor:g} LSB): no sound reaches the "
                      "microphone", **figures)
    return passed(f"RMS {rms:.0f} LSB (a silent pin: <= {floor:g})", f"RMS {rms:.0f}", **figures)


def check_camera(frame, settings: dict, expected: tuple[int, int, int]) -> PartResult:
    if frame is None:
        return failed(f"Camera.begin() failed: no {settings.get('chip', 'camera')} answers (is it seated in the "
                      "shield?)")
    width, height, bpp = expected
    figures = {"width": frame.width, "height": frame.height, "format": frame.format, "min": frame.low,
               "max": frame.high, "mean": frame.mean}
    if (frame.width, frame.height, frame.bytes_per_pixel) != (width, height, bpp):
        return failed(f"a {frame.width}x{frame.height} frame, not the {width}x{height} asked for", **figures)
    if frame.high - frame.low < int(settings.get("min_spread", 1)):
        return failed(f"a constant frame (pixels 0x{frame.low:X}..0x{frame.high:X}): no image arrives", **figures)
    return passed(f"{frame.width}x{frame.height} {frame.format}, pixels 0x{frame.low:X}..0x{frame.high:X}",
                  f"{frame.width}x{frame.height}", **figures)


def check_button(wait, settings: dict) -> PartResult:
    if wait is None:
        return failed("the firmware has no button pin")
    if wait.initially_down:
        return failed("reads pressed before anyone pressed it: stuck, or its pin is pulled low")
    if not wait.pressed:
        return failed(f"no press within {settings.get('wait_s', 15)} s")
    return passed(f"pressed after {wait.ms / 1000:.1f} s", f"{wait.ms / 1000:.1f} s", ms=wait.ms)


# ---- one board --------------------------------------------------------------------------------------------------


@dataclass
class KitCheckOptions:
    runs: int = 10
    interactive: bool = False
    engine: str | None = None


class FirmwareShelf:
    """The kit's self-test firmware per board profile and revision, built once on first use (threads share it)."""

    def __init__(self, kit: Kit, engine: str | None, root: Path):
        from tinydeploy.hil.models import sine_model

        self.kit, self.engine, self.root = kit, engine, root
        self.model = sine_model()
        self._built: dict[tuple[str, str], object] = {}
        self._errors: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def get(self, board, revision: Revision):
        from tinydeploy.emit.kit import kit_part
        from tinydeploy.flow import build_firmware

        key = (board.name, revision.name)
        with self._lock:  # one build at a time: they share the CPU and PlatformIO's state
            if key not in self._built and key not in self._errors:
                try:
                    self._built[key] = build_firmware(self.model, board, self.engine,
                                                      self.root / f"kit-{self.kit.name}-{revision.name}-{board.name}",
                                                      app=kit_part(self.kit, revision))
                except TinydeployError as exc:
                    self._errors[key] = f"the {revision.name} self-test firmware does not build: {exc.one_line()}"
            if key in self._errors:
                raise TinydeployError(self._errors[key])
            return self._built[key]


def _revision_label(revision: Revision) -> str:
    return f"{revision.name.capitalize()}: {revision.imu}, {revision.microphone}"


class BoardCheck:
    """The checks of one board, run in its own thread (QEMU dies with the thread that started it, so the thread
    stays until the board is closed)."""

    def __init__(self, index: int, runner, kit: Kit, shelf: FirmwareShelf, inputs, expected,
                 options: KitCheckOptions, progress: Progress):
        self.index, self.runner, self.kit, self.shelf = index, runner, kit, shelf
        self.inputs, self.expected, self.options, self.progress = inputs, expected, options, progress
        self.result = KitResult(index, runner.label, runner.serial_number, runner.board.name, kit.name,
                                runner.caps.simulated_sensors)
        self.device = None
        self.checking = "revision"  # the part being checked: an error of the board or link fails that part
        self.button_turn = threading.Event()  # set when this board may ask for its button press
        self.button_done = threading.Event()

    def _start(self, revision: Revision):
        from tinydeploy.flow import Device

        if self.device is not None:
            self.device.close()
            self.device = None
        self.progress(self.index, f"flashing the {revision.name} self-test")
        firmware = self.shelf.get(self.runner.board, revision)
        self.device = Device.start(firmware, self.runner, ready_timeout=20.0 if self.runner.caps.emulated else 30.0)

    def run(self) -> KitResult:
        from tinydeploy.link.sensors import sensor_info

        started = time.monotonic()
        parts = self.result.parts
        try:
            default = self.kit.revisions[self.kit.default_revision]
            self._start(default)
            info = sensor_info(self.device.link)
            if info.revision != default.number and info.revision in [r.number for r in self.kit.revisions.values()]:
                self._start(self.kit.revision(info.revision))  # the other revision's IMU library
                info = sensor_info(self.device.link)
            if info.revision:
                revision = self.kit.revision(info.revision)
                self.result.revision = revision.name
                parts["revision"] = passed(_revision_label(revision), _revision_label(revision),
                                           number=revision.number)
            else:
                parts["revision"] = failed("neither revision's IMU answers on the sensor bus: not a Nano 33 BLE "
                                           "Sense, or its sensors have no power")
            self.checking = "model"
            self._check_model()
            self._check_sensors()
            if self.options.interactive and "button" in self.kit.parts:
                self._check_button(info.has_button)
        except TinydeployError as exc:  # the parts after it stay unchecked ("-")
            parts[self.checking] = failed(exc.one_line())
        except Exception as exc:  # a bug must not hide the other boards' results
            parts[self.checking] = failed(f"internal error: {type(exc).__name__}: {exc}")
        finally:
            self._release()
            self.result.seconds = round(time.monotonic() - started, 2)
            failing = self.result.reason
            self.progress(self.index, "PASS" if self.result.passed else f"FAIL: {failing[:100]}")
        return self.result

    def _release(self) -> None:
        self.button_done.set()
        if self.device is not None:
            self.device.close()
            self.device = None
        else:
            self.runner.stop()

    def _check_model(self) -> None:
        self.progress(self.index, "checking the model")
        device = self.device
        got = device.run(self.inputs)
        wrong = [i for i, (a, b) in enumerate(zip(got, self.expected)) if a != b]
        if wrong:
            self.result.parts["model"] = failed(f"wrong outputs for {len(wrong)} of {len(self.inputs)} known inputs")
            return
        bench = device.bench(self.options.runs, 1, self.inputs[0])
        ram = device.ram()
        self.result.parts["model"] = passed(f"outputs match, {bench.latency_us.median:,.0f} us",
                                            f"{bench.latency_us.median:,.0f} us",
                                            latency_us=bench.latency_us.median, free_ram_bytes=ram.free_bytes)

    def _check_sensors(self) -> None:
        from tinydeploy.link.sensors import read_imu, record_mic, take_frame

        link, kit, parts = self.device.link, self.kit, self.result.parts
        if "imu" in kit.parts:
            self.checking = "imu"
            self.progress(self.index, "reading the IMU")
            parts["imu"] = check_imu(read_imu(link, int(kit.part("imu").get("samples", 50))), kit.part("imu"))
        if "microphone" in kit.parts:
            self.checking = "microphone"
            self.progress(self.index, "recording the microphone")
            mic = kit.part("microphone")
            parts["microphone"] = check_microphone(record_mic(link, int(mic.get("samples", 4096)),
                                                              int(mic.get("skip", 0))), mic)
        if "camera" in kit.parts:
            self.checking = "camera"  # a camera that never sends VSYNC blocks readFrame: no answer is its failure
            self.progress(self.index, "taking a camera frame")
            _, _, width, height, bpp = kit.camera_mode
            parts["camera"] = check_camera(take_frame(link), kit.part("camera"), (width, height, bpp))

    def _check_button(self, has_button: bool) -> None:
        from tinydeploy.link.sensors import wait_button

        settings = self.kit.part("button")
        self.checking = "button"
        if not has_button:
            self.result.parts["button"] = failed("the firmware has no button pin")
            return
        self.progress(self.index, "waiting for its turn to press the button")
        self.button_turn.wait()
        seconds = int(settings.get("wait_s", 15))
        simulated = self.runner.caps.simulated_sensors
        self.progress(self.index, f"PRESS THE BUTTON on board {self.index} ({self.runner.label}) within {seconds} s"
                      + (" (simulated press)" if simulated else ""))
        if simulated:
            # the virtual kit's button is pressed by the host, shortly after the prompt
            source = self.runner.sensor_source
            if hasattr(source, "press"):
                threading.Timer(0.3, source.press).start()
        wait = wait_button(self.device.link, seconds * 1000)
        self.result.parts["button"] = check_button(wait, settings)


def virtual_kit_sources(count: int, faults: dict[int, set[str]] | None = None) -> list:
    """Sensors of N virtual kits at rest, alternately Rev2 and Rev1 (a classroom has both), each its own noise."""
    from tinydeploy.sensors.sources import FAULTS, KitAtRest

    faults = faults or {}
    for index, parts in faults.items():
        unknown = set(parts) - set(FAULTS)
        if unknown or not 0 <= index < count:
            raise TinydeployError(f"cannot inject a fault into {', '.join(sorted(unknown)) or 'board'} {index}",
                                  f"give BOARD:PART with BOARD < {count} and PART one of {', '.join(FAULTS)}")
    return [KitAtRest(revision=2 if index % 2 == 0 else 1, seed=index, faults=frozenset(faults.get(index, ())))
            for index in range(count)]


def run_kit_check(kit: Kit, runners: list, options: KitCheckOptions = KitCheckOptions(),
                  progress: Progress = lambda i, s: None, build_dir: Path | None = None,
                  unresolved: list | None = None) -> list[KitResult]:
    """Check every board (one runner each, sensors already attached to emulated ones) in parallel; with
    `options.interactive` the boards then take turns for the button, one prompt at a time."""
    from tinydeploy.lab.check import self_test_inputs, unresolved_reason
    from tinydeploy.paths import cache_dir

    shelf = FirmwareShelf(kit, options.engine, build_dir or cache_dir() / "lab-selftest")
    inputs, expected = self_test_inputs(shelf.model)
    checks = [BoardCheck(index, runner, kit, shelf, inputs, expected, options, progress)
              for index, runner in enumerate(runners)]
    # the default revision's firmware is built before the boards start (a build error is every board's row)
    for board in {runner.board.name: runner.board for runner in runners}.values():
        try:
            shelf.get(board, kit.revisions[kit.default_revision])
        except TinydeployError:
            pass  # each board of this profile reports it
    results: list[KitResult] = []
    if checks:
        with ThreadPoolExecutor(max_workers=len(checks), thread_name_prefix="kit-check") as pool:
            futures = [pool.submit(check.run) for check in checks]
            if options.interactive:
                for check in checks:  # one board at a time, so the person knows which button to press
                    check.button_turn.set()
                    while not check.button_done.wait(0.2):
                        pass
            results = [future.result() for future in futures]
    for index, port in enumerate(unresolved or [], start=len(results)):
        row = KitResult(index, port.port, port.serial_number, " or ".join(port.boards), kit.name, False)
        row.parts["revision"] = failed(unresolved_reason(port))
        progress(index, f"FAIL: {row.parts['revision'].reason[:100]}")
        results.append(row)
    return results


# ---- reports ----------------------------------------------------------------------------------------------------


def kit_results_json(kit: Kit, results: list[KitResult]) -> dict:
    return {
        "kit": kit.name,
        "passed": sum(r.passed for r in results),
        "failed": sum(not r.passed for r in results),
        "boards": [{"port": r.port, "serial_number": r.serial_number, "board": r.board, "revision": r.revision,
                    "simulated": r.simulated, "status": r.status, "reason": r.reason, "seconds": r.seconds,
                    "parts": {name: {"status": part.status, "reason": part.reason, **part.figures}
                              for name, part in r.parts.items()}}
                   for r in results],
    }


def kit_results_csv(results: list[KitResult]) -> str:
    import csv
    import io

    out = io.StringIO()
    columns = ["port", "serial_number", "board", "revision", "simulated", "status"]
    for name in PART_COLUMNS:
        columns += [name, f"{name}_reason"]
    writer = csv.DictWriter(out, fieldnames=columns + ["seconds"], lineterminator="\n")
    writer.writeheader()
    for r in results:
        row = {"port": r.port, "serial_number": r.serial_number, "board": r.board, "revision": r.revision,
               "simulated": r.simulated, "status": r.status, "seconds": r.seconds}
        for name in PART_COLUMNS:
            part = r.parts.get(name)
            row[name] = part.status if part else "SKIP"
            row[f"{name}_reason"] = part.reason if part else ""
        writer.writerow(row)
    return out.getvalue()
