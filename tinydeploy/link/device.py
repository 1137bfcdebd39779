"""Talk to a device running the tinydeploy protocol over any pyserial URL.

The link knows ports and bytes only: a path such as /dev/ttyACM0 or a URL such as socket://127.0.0.1:PORT
goes in; who started the device (QEMU, an upload tool) is not its business.
"""

from __future__ import annotations

import re
import secrets
import time
from collections import deque
from dataclasses import dataclass
from typing import Callable

import serial

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.link.framing import (CorruptLine, FrameError, LineSplitter, NoiseLine, Reply, encode_command,
                                     parse_reply, printable)

PROTOCOL_VERSION = 2
POLL_SECONDS = 0.05  # how long one read waits; deadlines are kept by the link, not by the port
LINE_OVERHEAD = 48  # "td <id> in <offset> " and "*<crc>" in a command line, generously
MAX_INPUT_CHUNK = 128
MAX_COMMAND_ID = 999_999_999  # ids have at most 9 digits
READ_CHUNK = 65536
# Bounds of one exchange, so that a device that keeps sending well-framed lines cannot hold the host or its memory:
REPLY_BYTES = 16 * 1024  # answer bytes any command may use besides its data (out: 2 hex digits a byte, run: latencies)
MAX_IDLE_LINES = 32  # lines of a run's answer that bring no progress (no new latency, no new warm-up count)
MAX_TENSOR_BYTES = 64 << 20  # no microcontroller holds a tensor near this; larger sizes are a device's garbage
MAX_TEXT = 200  # characters kept of a device-provided name
DRAIN_LINES = 4096  # lines drain() returns at most (it keeps reading, dropping the rest)
MAX_PROFILE_STEPS = 4096  # ops a profile may report
MAX_TENSORS = 1024  # input or output tensors a device may report; more is garbage, not a model


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
    """The `inputs=2 in=16,4 intype=int8,int16` fields of an identify reply; CorruptLine when they disagree or lie
    out of range."""
    count = reply.int_field(count_key, 0, MAX_TENSORS)
    if count == 0:  # the engine did not start: it reports no tensors (the types come from the build)
        return ()
    sizes = [text for text in reply.fields[sizes_key].split(",") if text]
    types = [text for text in reply.fields.get(types_key, "").split(",") if text]
    if len(sizes) != count or (types and len(types) != count) or \
            not all(text.isdigit() and int(text) <= MAX_TENSOR_BYTES for text in sizes) or \
            not all(re.fullmatch(r"[a-z0-9]{1,16}", text) for text in types):
        raise CorruptLine(f"{sizes_key}={printable(reply.fields[sizes_key], 80)} "
                          f"{types_key}={printable(reply.fields.get(types_key, ''), 80)} do not describe "
                          f"{count} tensors")
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
        self._last_line_bytes = 0
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
        """The next valid reply line before the deadline, skipping noise and corrupt lines; None on timeout.
        The length of the line it came from is left in `_last_line_bytes`."""
        while True:
            while self._lines:
                line = self._lines.popleft()
                try:
                    reply = parse_reply(line)
                except NoiseLine:
                    if line.strip():
                        self.noise.append(line)
                    continue
                except CorruptLine:
                    self.corrupt_lines += 1
                    continue
                self._last_line_bytes = len(line) + 1
                return reply
            if time.monotonic() >= deadline:
                return None
            self._read_available(what)

    def _timeout_error(self, what: str, waited: float) -> TinydeployError:
        hint = f"check that the firmware runs and that {self.url} at {self.baudrate} baud is the device's port"
        if self.device_errors:
            hint += f"; the device said: {printable(self.device_errors[-1].payload, 120)}"
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

    def _transfer_seconds(self, nbytes: int) -> float:
        """Time the line needs for `nbytes` at its baud rate (10 bits a byte), doubled for slack."""
        return 2 * nbytes * 10 / max(self.baudrate, 300)

    def _exchange(self, verb: str, *args: object, timeout: float | None = None, data_bytes: int = 0,
                  progress: Callable[[Reply], bool] | None = None) -> list[Reply]:
        """Send one command; return its reply lines up to and including the final ok/err line.

        Every exchange is bounded: the answer must come within `timeout` (plus the time its `data_bytes` of
        expected data take on the line) and stay within REPLY_BYTES + `data_bytes`. With `progress` (a run), the
        wait starts afresh only on a line that advances the run (progress(reply) is True), and at most
        MAX_IDLE_LINES others are tolerated: a run ends within (runs + warm-ups + 1) x timeout."""
        reply_id, what = self._send(verb, *args)
        wait = self.timeout if timeout is None else timeout
        replies: list[Reply] = []
        budget = REPLY_BYTES + data_bytes
        received = idle = 0
        waited_from = time.monotonic()
        deadline = waited_from + wait + self._transfer_seconds(data_bytes)
        while True:
            reply = self._next_reply(deadline, what)
            if reply is None:
                raise self._timeout_error(what, round(deadline - waited_from, 3))
            if reply.id != reply_id:
                if reply.id == "-" and reply.kind == "err":
                    self.device_errors.append(reply)
                continue  # an answer to an older command, or an announcement
            received += self._last_line_bytes
            if received > budget:
                raise TinydeployError(f"the device on {self.url} sent more than {budget:,} bytes in answer to "
                                      f"`{what}`, more than that answer can hold",
                                      "check that the port runs a tinydeploy firmware, and reset the board")
            if reply.kind == "ok" and reply.name != verb:
                self.stale_replies += 1  # the same id but another command's answer: not ours
                replies.clear()
                continue
            replies.append(reply)
            if reply.kind in ("ok", "err"):
                return replies
            if progress is None:
                continue
            if progress(reply):
                waited_from = time.monotonic()
                deadline = waited_from + wait  # the run advanced: wait afresh for the next line
                idle = 0
            else:
                idle += 1
                if idle > MAX_IDLE_LINES:
                    raise TinydeployError(f"the device on {self.url} sent {idle} lines for `{what}` without "
                                          "progress (no new latency or warm-up count)",
                                          "check that the port runs a tinydeploy firmware, and reset the board")

    def _number(self, reply: Reply, key: str, what: str, low: int = 0, high: int = (1 << 32) - 1) -> int:
        """An integer field of a reply, within [low, high]; anything else is one clear error."""
        try:
            return reply.int_field(key, low, high)
        except CorruptLine as exc:
            raise TinydeployError(f"the device on {self.url} sent a malformed {what}: {exc}",
                                  "its firmware may be from another tinydeploy version, or not a tinydeploy "
                                  "firmware; rebuild and flash it") from None

    def _checked(self, verb: str, *args: object, timeout: float | None = None, data_bytes: int = 0,
                 progress: Callable[[Reply], bool] | None = None) -> list[Reply]:
        replies = self._exchange(verb, *args, timeout=timeout, data_bytes=data_bytes, progress=progress)
        final = replies[-1]
        if final.kind == "err":
            what = " ".join([verb, *map(str, args)])[:40]
            raise TinydeployError(f"the device on {self.url} rejected `{what}`: {printable(final.payload)}",
                                  _ERROR_HINTS.get(final.name, "see docs/protocol.md for the error codes"),
                                  exit_code=EXIT_FAILED)
        return replies

    def exchange(self, verb: str, *args: object, timeout: float | None = None, data_bytes: int = 0) -> list[Reply]:
        """Send a command; its reply lines (data lines, then the final ok or err), device errors returned, not
        raised (commands beyond the core ones, e.g. tinydeploy.link.sensors). `data_bytes`: the answer's expected
        data beyond REPLY_BYTES (its byte budget and time on the line)."""
        return self._exchange(verb, *args, timeout=timeout, data_bytes=data_bytes)

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
                if len(received) < DRAIN_LINES:
                    received.append(line)
                try:
                    reply = parse_reply(line)
                except FrameError:
                    continue
                if reply.id == "-" and reply.kind == "err":
                    self.device_errors.append(reply)
            now = time.monotonic()
            if now >= deadline and (not self._port.in_waiting or now >= deadline + 1.0):
                return received  # a device that never stops sending gets one second more, not for ever
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
                    self._engine_failed(printable(reply.fields.get("status", "?"), 20))
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
        what = "identity"
        try:
            texts = {key: reply.fields[key] for key in ("board", "engine", "model", "sha256", "build")}
            protocol = self._number(reply, "proto", what, 0, 1 << 16)
            if protocol != PROTOCOL_VERSION:
                raise TinydeployError(f"the device on {self.url} speaks protocol {protocol}, this tinydeploy "
                                      f"speaks {PROTOCOL_VERSION}", "rebuild and flash the firmware")
            inputs = _tensor_specs(reply, "inputs", "in", "intype")
            outputs = _tensor_specs(reply, "outputs", "out", "outtype")
        except KeyError:
            raise TinydeployError(f"the device on {self.url} sent an incomplete identity: "
                                  f"{printable(reply.payload)}",
                                  "its firmware may be from another tinydeploy version; rebuild it") from None
        except CorruptLine as exc:
            raise TinydeployError(f"the device on {self.url} sent a malformed {what}: {exc}",
                                  "its firmware may be from another tinydeploy version, or not a tinydeploy "
                                  "firmware; rebuild and flash it") from None
        if not re.fullmatch(r"[0-9a-f]{0,64}", texts["sha256"]):
            raise TinydeployError(f"the device on {self.url} sent a malformed model hash "
                                  f"{printable(texts['sha256'], 80)!r}", "rebuild and flash the firmware")
        info = DeviceInfo(
            board=printable(texts["board"], MAX_TEXT), engine=printable(texts["engine"], MAX_TEXT),
            model=printable(texts["model"], MAX_TEXT), model_hash=texts["sha256"],
            build_id=printable(texts["build"], MAX_TEXT), protocol=protocol, inputs=inputs, outputs=outputs,
            line_max=self._number(reply, "line", what, LINE_OVERHEAD + 2, 1 << 20),
            max_runs=self._number(reply, "maxruns", what, 1),
            engine_status=self._number(reply, "status", what, -(1 << 31), (1 << 31) - 1))
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
            if self._number(reply, "next", "answer to `in`", 0, len(data)) != offset + len(piece):
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
        `timeout` bounds the wait for each line that advances the run (the device reports at least every
        second, and after every inference that takes longer)."""
        from tinydeploy.link.limits import check_run_counts

        check_run_counts(runs, warmup, device_max_runs=self.info.max_runs if self.info else None)
        latencies: list[int] = []
        warmed = 0

        def advances(reply: Reply) -> bool:
            nonlocal warmed
            if reply.kind != "data":
                return False
            if reply.name == "warm":
                count = int(reply.args[0]) if len(reply.args) == 1 and reply.args[0].isdigit() else -1
                if warmed < count <= warmup:
                    warmed = count
                    return True
                return False
            if reply.name != "lat":
                return False
            if not reply.args or not all(arg.isdigit() and len(arg) <= 10 for arg in reply.args):
                raise TinydeployError(f"malformed latency line from {self.url}: {printable(reply.payload)}",
                                      "retry; the serial line may drop data")
            first, *values = (int(arg) for arg in reply.args)
            if first != len(latencies) or not values or first + len(values) > runs:
                raise TinydeployError(f"latency lines from {self.url} are out of order "
                                      f"(expected run {len(latencies)} of {runs}, got {first}+{len(values)})",
                                      "retry; the serial line may drop data")
            if max(values) >= 1 << 32:
                raise TinydeployError(f"the device on {self.url} sent a latency over 2^32 us",
                                      "retry; the serial line may drop data")
            latencies.extend(values)
            return True

        self._checked("run", runs, warmup, timeout=timeout, data_bytes=60 * runs + 40 * warmup, progress=advances)
        if len(latencies) != runs:
            raise TinydeployError(f"the device on {self.url} reported {len(latencies)} latencies for {runs} runs",
                                  "retry; the serial line may drop data")
        return latencies

    def read_output(self, index: int = 0) -> bytes:
        """Output tensor `index` of the last run (a run of one inference: later ones ran on consumed inputs)."""
        info = self.info or self.identify()  # its size bounds the answer
        if not 0 <= index < len(info.outputs):
            raise TinydeployError(f"the model on {self.url} has {len(info.outputs)} output(s); there is no output "
                                  f"{index}", f"read outputs 0 to {len(info.outputs) - 1}")
        expected = info.outputs[index].bytes
        output = bytearray()
        replies = self._checked("out", index, data_bytes=2 * expected + 48 * (expected // 32 + 1))
        for reply in replies:
            if reply.kind == "data" and reply.name == "out":
                if len(reply.args) != 2 or reply.args[0] != str(len(output)) or \
                        not re.fullmatch(r"(?:[0-9A-Fa-f]{2})+", reply.args[1]):
                    raise TinydeployError(f"output lines from {self.url} are out of order or malformed: "
                                          f"{printable(reply.payload, 80)}", "retry; the serial line may drop data")
                output.extend(bytes.fromhex(reply.args[1]))
        final = replies[-1]
        what = "answer to `out`"
        total = self._number(final, "bytes", what, 0, MAX_TENSOR_BYTES)
        sent_index = self._number(final, "index", what, 0, MAX_TENSORS)
        if sent_index != index or len(output) != total or total != expected:
            raise TinydeployError(f"the device on {self.url} sent {len(output)} of {total} bytes of output "
                                  f"{sent_index} for output {index} (which has {expected})", "retry")
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
        # each op's total is at most 10 digits and a space; 4,096 ops is far beyond a microcontroller's model
        replies = self._checked("prof", data_bytes=11 * MAX_PROFILE_STEPS)
        totals: list[int] = []
        for reply in replies:
            if reply.kind == "data" and reply.name == "prof":
                if not reply.args or not all(arg.isdigit() and len(arg) <= 10 for arg in reply.args):
                    raise TinydeployError(f"malformed profile line from {self.url}: {printable(reply.payload, 80)}",
                                          "retry; the serial line may drop data")
                first, *values = (int(arg) for arg in reply.args)
                if first != len(totals) or first + len(values) > MAX_PROFILE_STEPS:
                    raise TinydeployError(f"profile lines from {self.url} are out of order", "retry")
                totals.extend(values)
        final = replies[-1]
        what = "answer to `prof`"
        steps = self._number(final, "steps", what, 0, MAX_PROFILE_STEPS)
        if len(totals) != steps:
            raise TinydeployError(f"the device on {self.url} sent {len(totals)} of {steps} profile steps",
                                  "retry; the serial line may drop data")
        return self._number(final, "runs", what), totals

    def ram(self) -> RamReport:
        reply = self._checked("ram")[-1]
        what = "RAM report"
        return RamReport(stack_high_water=self._number(reply, "stack", what),
                         heap_high_water=self._number(reply, "heap", what),
                         activation_bytes=self._number(reply, "act", what),
                         used_bytes=self._number(reply, "used", what))


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
