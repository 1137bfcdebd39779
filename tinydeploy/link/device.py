"""Talk to a device running the tinydeploy protocol over any pyserial URL.

The link knows ports and bytes only: a path such as /dev/ttyACM0 or a URL such as socket://127.0.0.1:PORT
goes in; who started the device (QEMU, an upload tool) is not its business.
"""

from __future__ import annotations

import secrets
import time
from collections import deque
from dataclasses import dataclass

import serial

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.link.framing import (CorruptLine, FrameError, LineSplitter, NoiseLine, Reply, encode_command,
                                     parse_reply)

PROTOCOL_VERSION = 2
POLL_SECONDS = 0.05  # how long one read waits; deadlines are kept by the link, not by the port
LINE_OVERHEAD = 48  # "td <id> in <offset> " and "*<crc>" in a command line, generously
MAX_INPUT_CHUNK = 128
MAX_COMMAND_ID = 999_999_999  # ids have at most 9 digits
READ_CHUNK = 65536


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor as the device reports it: its size in bytes and element type ("int8", ...; empty
    when the firmware does not say)."""

    bytes: int
    dtype: str = ""


@dataclass(frozen=True)
class DeviceInfo:
    board: str
    engine: str
    model: str
    model_hash: str
    build_id: str
    protocol: int
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    line_max: int  # longest command line the device accepts
    max_runs: int
    engine_status: int  # td_engine_init()'s result; 0 = ready

    @property
    def input_bytes(self) -> int:
        """Size of input tensor 0 (0 when the engine did not start)."""
        return self.inputs[0].bytes if self.inputs else 0

    @property
    def output_bytes(self) -> int:
        return self.outputs[0].bytes if self.outputs else 0


@dataclass(frozen=True)
class RamReport:
    """RAM measured on the device. Static RAM (.data + .bss) is not here: it comes from the ELF file."""

    stack_high_water: int  # deepest stack use since boot (painted stack), 0 = not measured on this board
    heap_high_water: int  # largest heap extent since boot, 0 = not measured
    activation_bytes: int  # the engine's activation buffer or TFLM arena (holds the input tensors too)
    used_bytes: int  # the part of it the engine used


def _tensor_specs(reply: Reply, count_key: str, sizes_key: str, types_key: str) -> tuple[TensorSpec, ...]:
    """The `inputs=2 in=16,4 intype=int8,int16` fields of an identify reply; CorruptLine when they disagree."""
    count = reply.int_field(count_key)
    if count == 0:  # the engine did not start: it reports no tensors (the types come from the build)
        return ()
    sizes = [text for text in reply.fields[sizes_key].split(",") if text]
    types = [text for text in reply.fields.get(types_key, "").split(",") if text]
    if len(sizes) != count or (types and len(types) != count) or not all(text.isdigit() for text in sizes):
        raise CorruptLine(f"{sizes_key}={reply.fields[sizes_key]} does not list {count} tensor sizes")
    return tuple(TensorSpec(int(size), types[i] if types else "") for i, size in enumerate(sizes))


class DeviceLink:
    """One open connection. Every method sends a command and waits for its answer; `timeout` bounds the
    wait for each line of the answer. Failures raise TinydeployError naming the port."""

    def __init__(self, url: str, baudrate: int = 115200, timeout: float = 10.0):
        self.url = url
        self.baudrate = baudrate
        self.timeout = timeout
        try:
            self._port = serial.serial_for_url(url, baudrate=baudrate, timeout=POLL_SECONDS,
                                               write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TinydeployError(f"cannot open serial port {url}: {exc}",
                                  "check the port name (`tinydeploy` lists boards' ports) and that no other "
                                  "program holds it") from exc
        self._splitter = LineSplitter()
        self._lines: deque[bytes] = deque()
        # A random first id: a late answer to an earlier session's command (the host was restarted while the
        # device still ran it) then cannot pass for the answer to this session's command with the same id.
        self._next_id = secrets.randbelow(MAX_COMMAND_ID) + 1  # independent of seeded `random`
        self.info: DeviceInfo | None = None
        self.noise: deque[bytes] = deque(maxlen=64)  # recent lines that were not the protocol's
        self.corrupt_lines = 0
        self.stale_replies = 0
        self.device_errors: deque[Reply] = deque(maxlen=16)  # errors not tied to a command (id "-")

    # ---- lifecycle -------------------------------------------------------------------------------------

    def close(self) -> None:
        if self._port.is_open:
            self._port.close()

    def __enter__(self) -> DeviceLink:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # ---- bytes and lines ---------------------------------------------------------------------------------

    def _write(self, data: bytes, what: str) -> None:
        try:
            self._port.write(data)
            self._port.flush()
        except serial.SerialTimeoutException as exc:
            raise TinydeployError(f"the device on {self.url} does not take input (sending `{what}` timed out "
                                  f"after {self.timeout:g} s)", "check that the firmware runs") from exc
        except (serial.SerialException, OSError) as exc:
            raise TinydeployError(f"lost the serial port {self.url} while sending `{what}`: {exc}",
                                  "check the cable or whether the device restarted") from exc

    def _read_available(self, what: str) -> None:
        try:
            data = self._port.read(max(1, self._port.in_waiting))
            if data and self._port.in_waiting:
                data += self._read_without_waiting()
        except (serial.SerialException, OSError) as exc:
            raise TinydeployError(f"lost the serial port {self.url} while waiting for `{what}`: {exc}",
                                  "check the cable or whether the device restarted") from exc
        self._lines.extend(self._splitter.feed(data))

    def _read_without_waiting(self) -> bytes:
        """All bytes already received. A socket:// port's in_waiting says only "some" (1), so reading that much
        would take a byte per call, as many system calls as the line is long; a zero timeout reads all at once."""
        self._port.timeout = 0
        try:
            return self._port.read(READ_CHUNK)
        finally:
            self._port.timeout = POLL_SECONDS

    def _next_reply(self, deadline: float, what: str) -> Reply | None:
        """The next valid reply line before the deadline, skipping noise and corrupt lines; None on timeout."""
        while True:
            while self._lines:
                line = self._lines.popleft()
                try:
                    return parse_reply(line)
                except NoiseLine:
                    if line.strip():
                        self.noise.append(line)
                except CorruptLine:
                    self.corrupt_lines += 1
            if time.monotonic() >= deadline:
                return None
            self._read_available(what)

    def _timeout_error(self, what: str, waited: float) -> TinydeployError:
        hint = f"check that the firmware runs and that {self.url} at {self.baudrate} baud is the device's port"
        if self.device_errors:
            hint += f"; the device said: {self.device_errors[-1].payload}"
        if self.noise:
            last = self.noise[-1].decode("ascii", errors="replace").strip()[:80]
            hint += f"; its last other output: {last!r}"
        if self.corrupt_lines:
            hint += f"; {self.corrupt_lines} corrupted lines were dropped (baud rate?)"
        if what == "ready":
            message = f"the device on {self.url} did not announce `ready` nor answer `id` within {waited:g} s"
        else:
            message = f"no answer from the device on {self.url} to `{what}` within {waited:g} s"
        return TinydeployError(message, hint)

    # ---- commands -----------------------------------------------------------------------------------------

    def _send(self, verb: str, *args: object) -> tuple[str, str]:
        command_id = self._next_id
        self._next_id = self._next_id % MAX_COMMAND_ID + 1
        line = encode_command(command_id, verb, *args)
        what = " ".join([verb, *map(str, args)])
        if len(what) > 40:
            what = what[:37] + "..."
        self._write(line, what)
        return str(command_id), what

    def _exchange(self, verb: str, *args: object, timeout: float | None = None) -> list[Reply]:
        """Send one command; return its reply lines up to and including the final ok/err line."""
        reply_id, what = self._send(verb, *args)
        wait = self.timeout if timeout is None else timeout
        replies: list[Reply] = []
        deadline = time.monotonic() + wait
        while True:
            reply = self._next_reply(deadline, what)
            if reply is None:
                raise self._timeout_error(what, wait)
            if reply.id != reply_id:
                if reply.id == "-" and reply.kind == "err":
                    self.device_errors.append(reply)
                continue  # an answer to an older command, or an announcement
            if reply.kind == "ok" and reply.name != verb:
                self.stale_replies += 1  # the same id but another command's answer: not ours
                replies.clear()
                continue
            replies.append(reply)
            deadline = time.monotonic() + wait  # the device is alive: wait afresh for the next line
            if reply.kind in ("ok", "err"):
                return replies

    def _checked(self, verb: str, *args: object, timeout: float | None = None) -> list[Reply]:
        replies = self._exchange(verb, *args, timeout=timeout)
        final = replies[-1]
        if final.kind == "err":
            what = " ".join([verb, *map(str, args)])[:40]
            raise TinydeployError(f"the device on {self.url} rejected `{what}`: {final.payload}",
                                  _ERROR_HINTS.get(final.name, "see docs/protocol.md for the error codes"),
                                  exit_code=EXIT_FAILED)
        return replies

    def exchange(self, verb: str, *args: object, timeout: float | None = None) -> list[Reply]:
        """Send a command; its reply lines (data lines, then the final ok or err), device errors returned, not
        raised (commands beyond the core ones, e.g. tinydeploy.link.sensors)."""
        return self._exchange(verb, *args, timeout=timeout)

    def command(self, raw: str, timeout: float | None = None) -> list[str]:
        """Send a raw command (e.g. "run 3 1"; the link adds the id and checksum) and return the payloads of
        its reply lines, the final "ok ..." or "err ..." last. Device errors are returned, not raised."""
        words = raw.split()
        if not words:
            raise TinydeployError("empty command", "give a command such as `id`")
        return [reply.payload for reply in self._exchange(words[0], *words[1:], timeout=timeout)]

    def send_raw(self, data: bytes, chunk: int = 1024, settle: float = 0.0) -> list[bytes]:
        """Write bytes as they are (robustness tests), draining the device's answers meanwhile so neither
        side blocks on a full buffer, then for `settle` seconds more. Returns the lines received (replies and
        noise, unparsed) for callers that check them; errors not tied to a command go to device_errors."""
        received: list[bytes] = []
        for start in range(0, len(data), chunk):
            self._write(data[start:start + chunk], "raw bytes")
            received += self.drain(0.0)
        return received + self.drain(settle)

    def drain(self, seconds: float = 0.2) -> list[bytes]:
        """Read whatever arrives for `seconds` (at least what is already there); return its lines."""
        deadline = time.monotonic() + seconds
        received: list[bytes] = []
        while True:
            if self._port.in_waiting:
                self._read_available("drain")
            while self._lines:
                line = self._lines.popleft()
                received.append(line)
                try:
                    reply = parse_reply(line)
                except FrameError:
                    continue
                if reply.id == "-" and reply.kind == "err":
                    self.device_errors.append(reply)
            if time.monotonic() >= deadline and not self._port.in_waiting:
                return received
            if not self._port.in_waiting:
                time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def wait_ready(self, timeout: float = 30.0, probe_every: float = 1.0) -> DeviceInfo:
        """Wait until the device has booted: its `ready` line, or (when that was sent before the port was
        opened, as on USB boards) an answer to an identify probe. Raises if the engine failed to start."""
        start = time.monotonic()
        deadline = start + timeout
        next_probe = start + probe_every
        probe_ids: set[str] = set()
        while True:
            reply = self._next_reply(min(deadline, next_probe), "ready")
            if reply is not None:
                if reply.id == "-" and reply.kind == "ready":
                    break
                if reply.id == "-" and reply.kind == "err" and reply.name == "engine":
                    self._engine_failed(reply.fields.get("status", "?"))
                if reply.id in probe_ids and reply.kind == "ok" and reply.name == "id":
                    break
                continue
            now = time.monotonic()
            if now >= deadline:
                raise self._timeout_error("ready", timeout)
            if now >= next_probe:
                probe_ids.add(self._send("id")[0])
                next_probe = now + probe_every
        info = self.identify()
        if info.engine_status != 0:
            self._engine_failed(str(info.engine_status))
        return info

    def _engine_failed(self, status: str) -> None:
        raise TinydeployError(f"the inference engine failed to start on the device at {self.url} "
                              f"(td_engine_init returned {status})",
                              "the arena may be too small or an op unsupported; rebuild with a larger arena "
                              "or check the board's output", exit_code=EXIT_FAILED)

    def identify(self) -> DeviceInfo:
        reply = self._checked("id")[-1]
        try:
            protocol = reply.int_field("proto")
            if protocol != PROTOCOL_VERSION:
                raise TinydeployError(f"the device on {self.url} speaks protocol {protocol}, this tinydeploy "
                                      f"speaks {PROTOCOL_VERSION}", "rebuild and flash the firmware")
            info = DeviceInfo(
                board=reply.fields["board"], engine=reply.fields["engine"], model=reply.fields["model"],
                model_hash=reply.fields["sha256"], build_id=reply.fields["build"], protocol=protocol,
                inputs=_tensor_specs(reply, "inputs", "in", "intype"),
                outputs=_tensor_specs(reply, "outputs", "out", "outtype"),
                line_max=reply.int_field("line"), max_runs=reply.int_field("maxruns"),
                engine_status=reply.int_field("status"))
        except (KeyError, CorruptLine) as exc:
            raise TinydeployError(f"the device on {self.url} sent an incomplete identity: {reply.payload}",
                                  "its firmware may be from another tinydeploy version; rebuild it") from exc
        self.info = info
        return info

    def load_input(self, data: bytes, index: int = 0) -> None:
        """Load input tensor `index`. Inputs load in index order (loading input i again makes the later ones need
        loading too), and every `run` consumes them: load all of them before each run (see load_inputs)."""
        info = self.info or self.identify()
        if not 0 <= index < len(info.inputs):
            raise TinydeployError(f"the model on {self.url} has {len(info.inputs)} input(s); there is no input "
                                  f"{index}", f"give one input per tensor ({len(info.inputs)})")
        if len(data) != info.inputs[index].bytes:
            raise TinydeployError(f"input {index} has {len(data)} bytes but the model on {self.url} takes "
                                  f"{info.inputs[index].bytes}", "give an input of the model's input size")
        chunk = max(1, min(MAX_INPUT_CHUNK, (info.line_max - LINE_OVERHEAD) // 2))
        for offset in range(0, len(data), chunk):
            piece = data[offset:offset + chunk]
            reply = self._checked("in", index, offset, piece.hex().upper())[-1]
            if reply.int_field("next") != offset + len(piece):
                raise TinydeployError(f"the device on {self.url} lost input bytes at offset {offset}",
                                      "retry; if it persists the serial line drops data")

    def load_inputs(self, tensors) -> None:
        """Load every input tensor (a sequence of bytes in model order; bytes alone for a model with one input)."""
        tensors = [tensors] if isinstance(tensors, (bytes, bytearray)) else list(tensors)
        info = self.info or self.identify()
        if len(tensors) != len(info.inputs):
            raise TinydeployError(f"{len(tensors)} input tensor(s) given; the model on {self.url} takes "
                                  f"{len(info.inputs)}", "give one input per tensor, in the model's order")
        for index, data in enumerate(tensors):
            self.load_input(bytes(data), index)

    def run(self, runs: int, warmup: int = 0, timeout: float | None = None) -> list[int]:
        """Run `warmup` untimed and `runs` timed inferences; the latency of each timed run in microseconds.
        `timeout` bounds the wait between two lines (the device reports at least every second, and after
        every inference that takes longer)."""
        if runs < 1 or warmup < 0:
            raise TinydeployError(f"cannot run {runs} inferences after {warmup} warm-ups",
                                  "give at least one run and no negative warm-ups")
        latencies: list[int] = []
        for reply in self._checked("run", runs, warmup, timeout=timeout):
            if reply.kind == "data" and reply.name == "lat":
                try:
                    first, *values = (int(arg) for arg in reply.args)
                except ValueError as exc:
                    raise TinydeployError(f"malformed latency line from {self.url}: {reply.payload}") from exc
                if first != len(latencies):
                    raise TinydeployError(f"latency lines from {self.url} are out of order "
                                          f"(expected run {len(latencies)}, got {first})",
                                          "retry; the serial line may drop data")
                latencies.extend(values)
        if len(latencies) != runs:
            raise TinydeployError(f"the device on {self.url} reported {len(latencies)} latencies for {runs} runs",
                                  "retry; the serial line may drop data")
        return latencies

    def read_output(self, index: int = 0) -> bytes:
        """Output tensor `index` of the last run (a run of one inference: later ones ran on consumed inputs)."""
        output = bytearray()
        replies = self._checked("out", index)
        for reply in replies:
            if reply.kind == "data" and reply.name == "out":
                if len(reply.args) != 2 or int(reply.args[0]) != len(output):
                    raise TinydeployError(f"output lines from {self.url} are out of order: {reply.payload}",
                                          "retry; the serial line may drop data")
                output.extend(bytes.fromhex(reply.args[1]))
        final = replies[-1]
        if final.int_field("index") != index or len(output) != final.int_field("bytes"):
            raise TinydeployError(f"the device on {self.url} sent {len(output)} of {final.int_field('bytes')} "
                                  f"bytes of output {final.fields.get('index')} for output {index}", "retry")
        return bytes(output)

    def read_outputs(self) -> list[bytes]:
        """Every output tensor of the last run, in model order."""
        info = self.info or self.identify()
        return [self.read_output(index) for index in range(len(info.outputs))]

    def infer(self, tensors) -> list[bytes]:
        """One inference: every input loaded (bytes for a model with one input), run once, every output read."""
        self.load_inputs(tensors)
        self.run(1, 0)
        return self.read_outputs()

    def profile(self) -> tuple[int, list[int]]:
        """(inferences, microseconds per op summed over them) of the last `run`, from a profiling build (`prof`);
        (0, []) when the firmware does not profile."""
        replies = self._checked("prof")
        totals: list[int] = []
        for reply in replies:
            if reply.kind == "data" and reply.name == "prof":
                try:
                    first, *values = (int(arg) for arg in reply.args)
                except ValueError as exc:
                    raise TinydeployError(f"malformed profile line from {self.url}: {reply.payload}") from exc
                if first != len(totals):
                    raise TinydeployError(f"profile lines from {self.url} are out of order", "retry")
                totals.extend(values)
        final = replies[-1]
        if len(totals) != final.int_field("steps"):
            raise TinydeployError(f"the device on {self.url} sent {len(totals)} of {final.int_field('steps')} "
                                  "profile steps", "retry; the serial line may drop data")
        return final.int_field("runs"), totals

    def ram(self) -> RamReport:
        reply = self._checked("ram")[-1]
        return RamReport(stack_high_water=reply.int_field("stack"), heap_high_water=reply.int_field("heap"),
                         activation_bytes=reply.int_field("act"), used_bytes=reply.int_field("used"))


_ERROR_HINTS = {
    "crc": "the command was damaged on the way; check the baud rate and cable",
    "frame": "the device did not understand the command's framing; see docs/protocol.md",
    "unknown": "the firmware does not know this command; is it from another tinydeploy version?",
    "args": "the command's arguments are malformed; see docs/protocol.md",
    "range": "a number is outside what the device allows (input size, run count)",
    "gap": "an input chunk was lost or inputs came out of order; load the inputs again from input 0",
    "state": "load every input before each `run` (a run consumes them), and read outputs after a run of one "
             "inference",
    "engine": "the inference engine failed to start; check the arena size and the board's output",
    "invoke": "the engine returned an error during inference",
    "too-long": "the command line exceeded the device's line buffer",
}
