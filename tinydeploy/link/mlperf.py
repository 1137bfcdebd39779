"""Host side of the MLPerf Tiny / EEMBC runner's performance-mode protocol, for any compliant device.

Commands are `<text>%`; the device answers lines and ends every answer with a line containing `m-ready`.
Lines starting `m-` carry results, `e-` errors; anything else (boot banners, a tinydeploy firmware's own
`@td` lines) is noise. Only what the official runner relies on is assumed of the device: the regular
expressions below are the runner's reply formats.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from dataclasses import dataclass, field

import serial

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.link.framing import printable

READY = "m-ready"
DB_BYTES_PER_LINE = 31  # the official runner's chunk: 62 hex digits + "db " fit an 80-byte command buffer
# Bounds of one answer, so a device that never stops sending cannot hold the host or fill its memory:
MAX_LINE = 4096  # longer "lines" are cut into noise
MAX_ANSWER_LINES = 256  # m-/e- lines in one answer (results of the largest models fit in one line)
_NAME = re.compile(r"^m-name-dut-\[([^]]+)\]$")
_PROFILE = re.compile(r"^m-(model|profile)-\[([^]]+)\]$")
_LAP = re.compile(r"^m-lap-us-([0-9]+)$")
_RESULTS = re.compile(r"^m-results-\[([^]]*)\]$")


@dataclass(frozen=True)
class MlperfInference:
    runs: int
    warmup: int
    elapsed_us: int  # between the two m-lap-us timestamps that bracket the timed runs
    results: list[float]
    lines: list[str] = field(default_factory=list)

    @property
    def latency_us(self) -> float:
        """Mean time of one inference."""
        return self.elapsed_us / self.runs

    @property
    def throughput(self) -> float:
        return self.runs / (self.elapsed_us / 1e6) if self.elapsed_us else 0.0


class MlperfTinyLink:
    """One connection to an MLPerf Tiny compliant device over any pyserial URL (a port path or socket://)."""

    def __init__(self, url: str, baudrate: int = 115_200, timeout: float = 10.0):
        self.url = url
        self.timeout = timeout
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TinydeployError(f"cannot open serial port {url}: {exc}",
                                  "check the port name and that no other program holds it") from exc
        self._buffer = bytearray()
        self.noise: deque[str] = deque(maxlen=32)

    def close(self) -> None:
        if self._port.is_open:
            self._port.close()

    def __enter__(self) -> MlperfTinyLink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _read_line(self, deadline: float, what: str, wait: float) -> str:
        while True:
            end = self._buffer.find(b"\n")
            if end >= 0 or len(self._buffer) > MAX_LINE:
                cut = end if 0 <= end <= MAX_LINE else MAX_LINE
                raw = bytes(self._buffer[:cut])
                del self._buffer[:cut + 1 if cut == end else cut]
                return raw.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", errors="replace")
            if time.monotonic() >= deadline:
                last = f"; its last output: {self.noise[-1][:80]!r}" if self.noise else ""
                raise TinydeployError(f"no `{READY}` from the device on {self.url} after `{what}%` within "
                                      f"{wait:g} s{last}",
                                      "check that the firmware speaks the MLPerf Tiny protocol at this baud rate")
            try:
                self._buffer.extend(self._port.read(max(1, self._port.in_waiting)))
            except (serial.SerialException, OSError) as exc:
                raise TinydeployError(f"lost the serial port {self.url} while waiting for `{what}%`: {exc}",
                                      "check the cable or whether the device restarted") from exc

    def command(self, text: str, timeout: float | None = None, check: bool = True) -> list[str]:
        """Send `text%`; the device's `m-`/`e-` lines up to `m-ready` (excluded). `e-` lines raise when check."""
        if "%" in text or "\n" in text:
            raise ValueError(f"an MLPerf Tiny command cannot contain '%' or a newline: {text!r}")
        try:
            self._port.write(text.encode("ascii") + b"%")
            self._port.flush()
        except (serial.SerialException, OSError) as exc:
            raise TinydeployError(f"lost the serial port {self.url} while sending `{text[:40]}%`: {exc}",
                                  "check the cable or whether the device restarted") from exc
        wait = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + wait  # for the whole answer: lines that keep coming do not extend it
        lines: list[str] = []
        while True:
            line = self._read_line(deadline, text[:40], wait).strip()
            if READY in line:
                break
            if line.startswith(("m-", "e-")):
                lines.append(printable(line, MAX_LINE))
                if len(lines) > MAX_ANSWER_LINES:
                    raise TinydeployError(f"the device on {self.url} sent over {MAX_ANSWER_LINES} lines in answer "
                                          f"to `{text[:40]}%` without {READY}",
                                          "check that the firmware speaks the MLPerf Tiny protocol; reset the board")
            elif line:
                self.noise.append(line)
        errors = [line[2:].strip("[]") for line in lines if line.startswith("e-")]
        if check and errors:
            raise TinydeployError(f"the device on {self.url} rejected `{text[:40]}`: {errors[0]}",
                                  "see the MLPerf Tiny runner's command reference", exit_code=EXIT_FAILED)
        return lines

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Probe with `name%` until the device answers (it may be booting). Not an empty command: the
        reference firmware's parser dereferences the first token without checking it exists."""
        deadline = time.monotonic() + timeout
        saved, self.timeout = self.timeout, 1.0
        try:
            while True:
                try:
                    self.command("name", check=False)
                    return
                except TinydeployError:
                    if time.monotonic() >= deadline:
                        raise
        finally:
            self.timeout = saved

    def name(self) -> str:
        for line in self.command("name"):
            match = _NAME.match(line)
            if match:
                return match.group(1)
        raise TinydeployError(f"the device on {self.url} did not answer `name%` with m-name-dut-[...]",
                              "is it an MLPerf Tiny firmware?")

    def profile(self) -> dict[str, str]:
        found = {}
        for line in self.command("profile"):
            match = _PROFILE.match(line)
            if match:
                found[match.group(1)] = match.group(2)
        return found

    def load(self, data: bytes, chunk: int = DB_BYTES_PER_LINE) -> None:
        """`db load N` then `db <hex>` lines; the device must report m-load-done."""
        if not data:
            raise TinydeployError("nothing to load", "give a non-empty input")
        self.command(f"db load {len(data)}")
        done = False
        for start in range(0, len(data), chunk):
            done = "m-load-done" in self.command("db " + data[start:start + chunk].hex())
        if not done:
            raise TinydeployError(f"the device on {self.url} did not confirm the {len(data)} input bytes "
                                  "(no m-load-done)", "retry; the serial line may drop data")

    def infer(self, runs: int, warmup: int = 0, timeout: float | None = None) -> MlperfInference:
        """`infer N W`: warm-ups, then N timed inferences bracketed by two m-lap-us timestamps."""
        if runs < 1 or warmup < 0:
            raise TinydeployError(f"cannot run {runs} inferences after {warmup} warm-ups",
                                  "give at least one run and no negative warm-ups")
        lines = self.command(f"infer {runs} {warmup}", timeout=timeout)
        laps = [int(m.group(1)) for m in map(_LAP.match, lines) if m]
        if len(laps) < 2:
            raise TinydeployError(f"the device on {self.url} sent {len(laps)} m-lap-us timestamps for "
                                  f"`infer {runs} {warmup}` (expected 2)", "is it an MLPerf Tiny firmware?")
        elapsed = (laps[-1] - laps[0]) % 2**32  # a microsecond counter wraps at 2^32
        return MlperfInference(runs, warmup, elapsed, _results(lines), lines)

    def results(self) -> list[float]:
        return _results(self.command("results"))


def _results(lines: list[str]) -> list[float]:
    for line in reversed(lines):
        match = _RESULTS.match(line)
        if match:
            try:
                values = [float(x) for x in match.group(1).split(",") if x.strip()]
            except ValueError as exc:
                raise TinydeployError(f"malformed results line: {line[:80]}",
                                      "check the firmware's results output") from exc
            if not all(math.isfinite(v) for v in values):
                raise TinydeployError(f"the device sent a result that is not a finite number: {line[:80]}",
                                      "check the model and the firmware's results output")
            return values
    return []
