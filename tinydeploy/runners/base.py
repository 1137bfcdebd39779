"""The runner interface: one class per way of putting a built firmware on a board and reaching its serial port.

A board profile names its runner (`[upload] runner`); the runner's own settings are the profile's table of that
name (`[qemu]`, ...). What differs between runners is declared in `caps`, so callers ask "is the timing emulated?"
or "does it need a port?" instead of asking which board it is. Lifecycle: `upload` (flash the firmware, or
prepare it), `start` (run it; returns the pyserial URL of its serial port), `check_alive`, `stop`.
A firmware here is anything with `board`, `project_dir`, `env_name` and `elf_path` (tinydeploy.flow.Firmware).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ClassVar, Sequence

from tinydeploy.errors import TinydeployError

if TYPE_CHECKING:
    from tinydeploy.boards import Board

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class RunnerCaps:
    """What a runner can do, so that callers never branch on a board's name."""

    emulated: bool = False  # the board is emulated on this machine: latency is virtual time
    needs_port: bool = False  # the board is on a serial port of this machine, found by USB id or --port
    counts_instructions: bool = False  # a latency converts exactly to executed instructions
    can_reset: bool = False  # start() runs the firmware from reset
    simulated_sensors: bool = False  # the board's sensors are fed by the host (attach_sensors), a simulation


@dataclass(frozen=True)
class UnresolvedPort:
    """A port whose USB id belongs to several board profiles (every ST-Link board shows the same id)."""

    port: str
    serial_number: str
    boards: tuple[str, ...]


class Runner:
    """One board reached through one runner. Subclasses set `name` (the profile's `[upload] runner`) and `caps`."""

    name: ClassVar[str] = ""
    caps: ClassVar[RunnerCaps] = RunnerCaps()
    # False for a runner chosen by an option (--place), never named by a profile's [upload] runner
    chosen_by_profile: ClassVar[bool] = True

    def __init__(self, board: Board, port: str | None = None, index: int = 0, serial_number: str = ""):
        self.board = board
        self.port = port
        self.index = index
        self.serial_number = serial_number
        self.label = port or board.name
        self.url: str | None = None  # the serial URL once started
        self.location = ""  # the machine the board hangs off when it is not this one (a farm's exporter)

    # ---- the profile ------------------------------------------------------------------------------------------

    @classmethod
    def check_settings(cls, board: Board) -> None:
        """Raise a TinydeployError naming the profile field when the runner's table is incomplete."""

    @classmethod
    def discover(cls, boards: Sequence[Board], ports=None) -> tuple[list[Runner], list[UnresolvedPort]]:
        """The boards of this runner attached to this machine (none for runners that start their own)."""
        return [], []

    # ---- the lifecycle ----------------------------------------------------------------------------------------

    def check_firmware(self, firmware) -> None:
        if firmware.board.upload_runner != self.name:
            raise TinydeployError(f"{self.label} ({self.board.name}) cannot run a firmware built for "
                                  f"{firmware.board.name}", f"build it for {self.board.name}")

    def upload(self, firmware, progress: Progress = _quiet) -> None:
        """Put the firmware on the board (flash it), or make it ready to start."""
        raise NotImplementedError

    def start(self, progress: Progress = _quiet) -> str:
        """Run the uploaded firmware; the pyserial URL of the board's serial port."""
        raise NotImplementedError

    def run(self, firmware, progress: Progress = _quiet) -> str:
        """upload + start: the usual way to get a firmware running."""
        self.check_firmware(firmware)
        self.upload(firmware, progress)
        self.url = self.start(progress)
        return self.url

    def stop(self) -> None:
        """Release the board (stop the emulator); safe to call more than once."""

    def attach_sensors(self, source) -> None:
        """Feed the board's sensors from `source` (a tinydeploy.sensors.SensorSource) from the next start() on.
        Only runners with caps.simulated_sensors can: a real board's sensors are its own."""
        raise TinydeployError(f"{self.label} ({self.board.name}) has real sensors; recorded sensor data can only be "
                              "fed to an emulated board", "use --board virtual")

    @property
    def sensor_source(self):
        """The tinydeploy.sensors.SensorSource attached, if any."""
        return None

    @property
    def sensor_feed(self):
        """The running tinydeploy.sensors.SensorFeed, if sensors are attached (what it served, its problems)."""
        return None

    def check_alive(self) -> None:
        """Raise a TinydeployError saying why the board stopped, if it did (called after a failed exchange)."""

    # ---- what its figures mean --------------------------------------------------------------------------------

    def instructions(self, latency_us: int) -> int | None:
        """Instructions executed in `latency_us` when the runner counts them (caps.counts_instructions)."""
        return None

    def timing_note(self) -> str:
        """How to read a latency from this runner ("" for a real clock)."""
        return ""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()
