"""Firmware on a board, as a test or a lab check uses it: build once, start on a target, run, time, read RAM.

A *target* is where a firmware runs: a virtual board (one QEMU instance) or a USB board on a serial port.
Each knows only how to start a built firmware and hand back a pyserial URL; everything after that goes
through the serial protocol (tinydeploy.link), the same for both.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from tinydeploy.boards import Board
from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.model.tflite import TfliteModel

Log = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class LatencyStats:
    """Latencies of timed runs in microseconds (emulated time on the virtual board)."""

    samples: tuple[int, ...]

    @property
    def median(self) -> float:
        return float(statistics.median(self.samples))

    @property
    def mean(self) -> float:
        return float(statistics.fmean(self.samples))

    @property
    def min(self) -> int:
        return min(self.samples)

    @property
    def max(self) -> int:
        return max(self.samples)

    def quantile(self, q: float) -> int:
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]

    @property
    def p95(self) -> int:
        return self.quantile(0.95)

    @property
    def stdev(self) -> float:
        return float(statistics.pstdev(self.samples))

    def as_dict(self) -> dict[str, float]:
        return {"median": self.median, "p95": self.p95, "min": self.min, "max": self.max, "mean": round(self.mean, 1)}


@dataclass(frozen=True)
class BenchResult:
    latency_us: LatencyStats
    runs: int
    warmup: int
    emulated: bool


@dataclass(frozen=True)
class RamUsage:
    """RAM of the running firmware: static (.data + .bss, from the ELF file) plus the measured stack and heap."""

    static_bytes: int
    stack_bytes: int
    heap_bytes: int
    activation_bytes: int
    board_bytes: int

    @property
    def total_bytes(self) -> int:
        return self.static_bytes + self.stack_bytes + self.heap_bytes

    @property
    def free_bytes(self) -> int:
        return self.board_bytes - self.total_bytes

    @property
    def fits(self) -> bool:
        return self.total_bytes <= self.board_bytes


@dataclass
class Firmware:
    """A built firmware project for one model, board profile and engine."""

    model: TfliteModel
    board: Board
    engine: str
    project_dir: Path
    env_name: str
    elf_path: Path
    flash_bytes: int
    static_ram_bytes: int
    build_seconds: float = 0.0

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.model.sha256, self.board.name, self.engine)


def build_firmware(model: TfliteModel, board: Board, engine: str | None, out_dir: Path,
                   log: Log = _quiet) -> Firmware:
    """Generate and build the project for `model` (incremental: an unchanged project rebuilds in ~1 s)."""
    from tinydeploy.build.platformio import build_project
    from tinydeploy.emit.project import generate_project
    from tinydeploy.flow import check_fit

    from tinydeploy.locking import project_lock

    engine = engine or board.default_engine
    started = time.monotonic()
    with project_lock(out_dir, wait=None):  # test workers building the same firmware take turns
        project = generate_project(model, board, engine, out_dir, force=True)
        if project.native_plan is not None:
            check_fit(model, board, engine, project.native_plan.activation_bytes)
        log(f"building {model.name} for {board.name} ({engine}) in {project.directory}")
        build = build_project(project.directory, project.env_name)
    log(f"built: flash {build.flash_bytes} B, static RAM {build.ram_bytes} B, log {build.log_path}")
    return Firmware(model, board, engine, project.directory, project.env_name, build.elf_path, build.flash_bytes,
                    build.ram_bytes, time.monotonic() - started)


# ---- targets ----------------------------------------------------------------------------------------------------


class Target:
    """Where a firmware runs. `start` puts it there and returns the serial URL; `stop` releases the board."""

    label: str = "target"
    serial_number: str = ""

    def start(self, firmware: Firmware, log: Log = _quiet) -> str:
        raise NotImplementedError

    def stop(self) -> None:
        pass

    def check_alive(self) -> None:
        """Raise a TinydeployError saying why the board stopped, if it did."""


class VirtualTarget(Target):
    """One QEMU virtual board; starting another firmware restarts QEMU with it."""

    def __init__(self, index: int = 0):
        self.index = index
        self.label = f"virtual{index}"
        self.serial_number = f"qemu-{index}"
        self.qemu = None

    def start(self, firmware: Firmware, log: Log = _quiet) -> str:
        from tinydeploy.runners.qemu import QemuBoard

        if not firmware.board.is_virtual:
            raise TinydeployError(f"a virtual board cannot run a firmware built for {firmware.board.name}",
                                  "build it with --td-board virtual")
        self.stop()
        self.qemu = QemuBoard(elf_path=firmware.elf_path).start()
        log(f"QEMU pid {self.qemu.pid} serves {self.qemu.port_url}")
        return self.qemu.port_url

    def stop(self) -> None:
        if self.qemu is not None:
            self.qemu.stop()
            self.qemu = None

    def check_alive(self) -> None:
        if self.qemu is not None:
            self.qemu.wait(0.5)  # called after a failed exchange: a dying QEMU closes its socket before it exits
            self.qemu.check_alive()


class SerialTarget(Target):
    """A USB board on a serial port, flashed by the USB runner (PlatformIO's upload tool for the board)."""

    def __init__(self, port: str, serial_number: str = ""):
        self.port = port
        self.label = port
        self.serial_number = serial_number

    def start(self, firmware: Firmware, log: Log = _quiet) -> str:
        from tinydeploy.runners.usb import PlatformioUploader, wait_for_port

        log(f"uploading {firmware.project_dir} to {self.port}")
        upload = PlatformioUploader(firmware.project_dir, firmware.env_name, firmware.board).upload(self.port, log)
        log(f"uploaded in {upload.seconds:.1f} s (log {upload.log_path})")
        if "://" not in self.port:
            self.port = wait_for_port(firmware.board, preferred=self.port)  # it re-enumerates after the upload
        return self.port


# ---- a running firmware -------------------------------------------------------------------------------------------


@dataclass
class Device:
    """A firmware running on a target, reached over the serial protocol."""

    firmware: Firmware
    target: Target
    link: object  # tinydeploy.link.DeviceLink
    info: object  # tinydeploy.link.DeviceInfo
    log: Log = field(default=_quiet)

    @classmethod
    def start(cls, firmware: Firmware, target: Target, log: Log = _quiet, ready_timeout: float = 30.0) -> Device:
        from tinydeploy.link import DeviceLink

        url = target.start(firmware, log)
        link = DeviceLink(url, firmware.board.baud)
        try:
            info = link.wait_ready(ready_timeout)
            if not firmware.model.sha256.startswith(info.model_hash):
                raise TinydeployError(f"{target.label} runs another model (hash {info.model_hash})",
                                      "the upload may have failed; flash again", exit_code=EXIT_FAILED)
        except BaseException:
            link.close()
            target.stop()
            raise
        log(f"ready: {info}")
        return cls(firmware, target, link, info, log)

    def close(self) -> None:
        self.link.close()
        self.target.stop()

    def _guard(self, action: Callable[[], object]):
        """Run an exchange; if it fails because the board stopped (QEMU died), say that instead."""
        try:
            return action()
        except TinydeployError:
            self.target.check_alive()
            raise

    def infer(self, data: bytes) -> bytes:
        def exchange() -> bytes:
            self.link.load_input(data)
            self.link.run(1, 0)
            return self.link.read_output()
        output = self._guard(exchange)
        self.log(f"infer {data[:16].hex()}{'...' if len(data) > 16 else ''} -> {output[:16].hex()}")
        return output

    def run(self, inputs: list[bytes]) -> list[bytes]:
        """The output tensor for each input tensor (raw bytes in, raw bytes out)."""
        return [self.infer(data) for data in inputs]

    def compare_with_host(self, count: int = 5, seed: int = 0) -> list[int]:
        """Run `count` random inputs here and on host TFLM; the indices of those whose outputs differ."""
        from tinydeploy.golden import random_inputs, tflm_outputs

        inputs = random_inputs(self.firmware.model, count, seed=seed)
        expected = tflm_outputs(self.firmware.model, inputs)
        got = self.run(inputs)
        mismatches = [i for i, (a, b) in enumerate(zip(got, expected)) if a != b]
        self.log(f"{count} inputs compared with host TFLM: {len(mismatches)} differ")
        return mismatches

    def bench(self, runs: int = 20, warmup: int = 2, data: bytes | None = None) -> BenchResult:
        """Time `runs` inferences after `warmup` untimed ones, on `data` or a fixed random input."""
        from tinydeploy.golden import random_inputs

        data = data if data is not None else random_inputs(self.firmware.model, 1, seed=0)[0]

        def exchange() -> list[int]:
            self.link.load_input(data)
            return self.link.run(runs, warmup)
        stats = LatencyStats(tuple(self._guard(exchange)))
        self.log(f"bench {runs} runs after {warmup} warm-ups: {stats.as_dict()} us")
        return BenchResult(stats, runs, warmup, self.firmware.board.is_virtual)

    def ram(self) -> RamUsage:
        report = self._guard(self.link.ram)
        usage = RamUsage(self.firmware.static_ram_bytes, report.stack_high_water, report.heap_high_water,
                         report.activation_bytes, self.firmware.board.ram_bytes)
        self.log(f"ram: {usage}")
        return usage

    def command(self, raw: str, timeout: float | None = None) -> list[str]:
        """A raw protocol command (e.g. "run 3 1"); reply payloads, the final ok/err last."""
        lines = self._guard(lambda: self.link.command(raw, timeout))
        self.log(f"> {raw}\n" + "\n".join(f"< {line}" for line in lines))
        return lines
