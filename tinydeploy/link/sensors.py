"""The protocol's sensor commands, host side (docs/protocol.md, "Sensor commands"; the device side is
firmware/protocol/td_sensors.c): read the IMU, record the microphone, take a camera frame, wait for the button,
and fill the model's input from a sensor (`sense`). A part the device reports absent gives None."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.link.device import DeviceLink
from tinydeploy.link.framing import CorruptLine, Reply

# Seconds without a line before a sensor command is given up (the device sends a line at least every second
# while it waits; a sample that does not come ends the command within ~0.25 s of board time).
SENSOR_TIMEOUT = 20.0


@dataclass(frozen=True)
class SensorInfo:
    kit: str
    revision: int  # the revision the board's sensor bus shows (0: neither revision's IMU answers)
    built_revision: int  # the revision whose IMU library the firmware has
    simulated: bool  # the sensors are the virtual board's stand-ins
    has_button: bool
    has_sense: bool  # the firmware can fill the model's input from a sensor (replay firmware)


@dataclass(frozen=True)
class ImuReading:
    accel_g: np.ndarray  # [n, 3]
    gyro_dps: np.ndarray  # [n, 3]
    magnet_ut: np.ndarray | None  # [3], None when no magnetometer sample came
    requested: int


@dataclass(frozen=True)
class MicRecording:
    samples: np.ndarray  # int16
    rate_hz: int
    requested: int


@dataclass(frozen=True)
class CameraFrame:
    width: int
    height: int
    bytes_per_pixel: int
    format: str
    bytes: int
    low: int
    high: int
    mean: int
    crc32: int
    ms: int  # board time the capture took


@dataclass(frozen=True)
class ButtonWait:
    pressed: bool
    initially_down: bool
    ms: int


IMU_LINE_BYTES = 7 * 12 + 40


def _final(link: DeviceLink, verb: str, args: tuple, timeout: float = SENSOR_TIMEOUT,
           data_bytes: int = 0) -> tuple[list[Reply], Reply]:
    replies = link.exchange(verb, *args, timeout=timeout, data_bytes=data_bytes)
    return replies, replies[-1]


def _absent(reply: Reply) -> bool:
    return reply.kind == "err" and reply.name == "absent"


def _rejected(link: DeviceLink, verb: str, reply: Reply) -> TinydeployError:
    hint = ("the firmware has no sensor commands: flash a kit self-test (lab check --kit) or a replay firmware"
            if reply.name == "unknown" else "see docs/protocol.md, \"Sensor commands\"")
    return TinydeployError(f"the device on {link.url} rejected `{verb}`: {reply.payload}", hint,
                           exit_code=EXIT_FAILED)


def _ints(reply: Reply, keys: list[str]) -> list[int]:
    try:
        # sensor figures are int32 (magnetometer axes go negative) or uint32 (counts)
        return [reply.int_field(key, -(1 << 31), (1 << 32) - 1) for key in keys]
    except CorruptLine as exc:
        raise TinydeployError(f"malformed sensor reply: {reply.payload}",
                              "the firmware may be from another tinydeploy version; rebuild it") from exc


def sensor_info(link: DeviceLink) -> SensorInfo:
    _, reply = _final(link, "sensors", ())
    if reply.kind != "ok":
        raise _rejected(link, "sensors", reply)
    revision, built, simulated, button, sense = _ints(reply, ["rev", "built", "sim", "button", "sense"])
    return SensorInfo(reply.fields.get("kit", ""), revision, built, bool(simulated), bool(button), bool(sense))


def read_imu(link: DeviceLink, samples: int) -> ImuReading | None:
    # a line per sample: six signed 32-bit figures and its index, with framing
    replies, reply = _final(link, "imu", (samples,), data_bytes=samples * IMU_LINE_BYTES)
    if _absent(reply):
        return None
    if reply.kind != "ok":
        raise _rejected(link, "imu", reply)
    rows = []
    for line in replies:
        if line.kind == "data" and line.name == "imu":
            if len(line.args) != 7 or int(line.args[0]) != len(rows):
                raise TinydeployError(f"IMU lines from {link.url} are out of order: {line.payload}",
                                      "retry; the serial line may drop data")
            rows.append([int(value) for value in line.args[1:]])
    (count,) = _ints(reply, ["n"])
    if count != len(rows):
        raise TinydeployError(f"the device on {link.url} sent {len(rows)} of {count} IMU samples", "retry")
    values = np.array(rows, dtype=np.float64).reshape(-1, 6)
    magnet = None
    if reply.fields.get("mag") == "1":
        magnet = np.array(_ints(reply, ["mx", "my", "mz"]), dtype=np.float64) / 1e3
    return ImuReading(values[:, :3] / 1e6, values[:, 3:] / 1e3, magnet, samples)


def record_mic(link: DeviceLink, samples: int, skip: int = 0) -> MicRecording | None:
    # four hex digits a sample, plus each line's index and framing
    replies, reply = _final(link, "mic", (samples, skip), data_bytes=samples * 4 + (samples // 16 + 1) * 64)
    if _absent(reply):
        return None
    if reply.kind != "ok":
        raise _rejected(link, "mic", reply)
    data = bytearray()
    for line in replies:
        if line.kind == "data" and line.name == "mic":
            if len(line.args) != 2 or int(line.args[0]) != len(data) // 2:
                raise TinydeployError(f"microphone lines from {link.url} are out of order: {line.payload}",
                                      "retry; the serial line may drop data")
            data.extend(bytes.fromhex(line.args[1]))
    count, rate = _ints(reply, ["n", "rate"])
    if count * 2 != len(data):
        raise TinydeployError(f"the device on {link.url} sent {len(data) // 2} of {count} microphone samples", "retry")
    return MicRecording(np.frombuffer(bytes(data), dtype="<i2").astype(np.int16), rate, samples)


def take_frame(link: DeviceLink) -> CameraFrame | None:
    _, reply = _final(link, "cam", ())
    if _absent(reply):
        return None
    if reply.kind != "ok":
        raise _rejected(link, "cam", reply)
    width, height, bpp, size, low, high, mean, crc, ms = _ints(
        reply, ["w", "h", "bpp", "bytes", "min", "max", "mean", "crc", "ms"])
    return CameraFrame(width, height, bpp, reply.fields.get("format", ""), size, low, high, mean, crc, ms)


def wait_button(link: DeviceLink, wait_ms: int) -> ButtonWait | None:
    # the device sends a `data wait` line every second while it waits
    _, reply = _final(link, "button", (wait_ms,))
    if _absent(reply):
        return None
    if reply.kind != "ok":
        raise _rejected(link, "button", reply)
    pressed, initial, ms = _ints(reply, ["pressed", "initial", "ms"])
    return ButtonWait(bool(pressed), bool(initial), ms)


def sense(link: DeviceLink) -> bool:
    """Fill the model's input from the firmware's input sensor; False when the sensor has no more data."""
    _, reply = _final(link, "sense", ())
    if reply.kind == "ok":
        return True
    if reply.kind == "err" and reply.name == "sense" and reply.args[:1] == ("end",):
        return False
    if reply.kind == "err" and reply.name == "sense":
        raise TinydeployError(f"the device on {link.url} could not fill the model's input: its input sensor did not "
                              "start (begin() failed)", "check that the stimulus has data for the input sensor",
                              exit_code=EXIT_FAILED)
    raise _rejected(link, "sense", reply)
