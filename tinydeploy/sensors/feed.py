"""The host end of the virtual board's sensor link: two named pipes in QEMU's working directory, which the board
opens with semihosting file calls (bsp/src/sensor_link.c), and a thread answering the board's requests from a
SensorSource. QEMU waits while the feed answers, so the board sees the data arrive in no virtual time.

Wire format (firmware/platform/README.md, "Sensors"):
    request  (board -> host), 7 bytes:  A5 kind seq count:u16le arg:u16le
    answer   (host -> board):           5A kind seq status len:u32le payload[len]
Kinds: H hello (payload: revision, parts mask), A motion (count x 6 int16: accelerometer, gyroscope raw counts in
the chip's axes), M magnetometer (3 int16), P microphone (count int16 samples; arg = sample rate), C camera frame
(arg = resolution << 8 | format, bit 15: test pattern), B button (1 byte, 1 = pressed).
"""

from __future__ import annotations

import errno
import os
import shutil
import struct
import tempfile
import threading
from pathlib import Path
from dataclasses import dataclass, field

import numpy as np

from tinydeploy.sensors.sources import END, REFUSED, SensorSource

REQUEST_SYNC = 0xA5
ANSWER_SYNC = 0x5A
REQUEST = struct.Struct("<BBBHH")
ANSWER_HEADER = struct.Struct("<BBBBI")
STATUS_OK, STATUS_END, STATUS_REFUSED = 0, 1, 2
PART_BITS = {"imu": 0x01, "magnet": 0x02, "mic": 0x04, "camera": 0x08, "button": 0x10}
# OV767X resolutions and formats (Arduino_OV767X.h's enums)
RESOLUTIONS = {0: (640, 480), 1: (352, 240), 2: (320, 240), 3: (176, 144), 4: (160, 120)}
FORMATS = {0: "YUV422", 1: "RGB444", 2: "RGB565", 4: "GRAYSCALE"}
MAX_COUNT = 4096  # samples per request: more than any board asks at once
REQUEST_PIPE = "tinydeploy-sensors.req"  # the names the board opens (sensor_link.c), relative to QEMU's cwd
ANSWER_PIPE = "tinydeploy-sensors.ans"


def _int16(values: np.ndarray) -> np.ndarray:
    return np.clip(np.round(values), -32768, 32767).astype("<i2")


def motion_counts(revision: int, samples: np.ndarray) -> np.ndarray:
    """Accelerometer (g) and gyroscope (dps) in the board's axes -> the chip's raw counts in its own axes, which
    the board's library turns back (Rev1 LSM9DS1: +-4 g, +-2000 dps, board axes; Rev2 BMI270: the same ranges, and
    the library reports x = -chip y, y = -chip x on the Nano 33 BLE)."""
    samples = np.asarray(samples, dtype=np.float64).reshape(-1, 6)
    counts = np.concatenate([samples[:, :3] * 8192.0, samples[:, 3:] * (32768.0 / 2000.0)], axis=1)
    if revision == 2:
        counts = counts[:, [1, 0, 2, 4, 3, 5]] * np.array([-1, -1, 1, -1, -1, 1])
    return _int16(counts)


def magnet_counts(revision: int, microtesla: np.ndarray) -> np.ndarray:
    """Magnetic field (uT) -> raw counts: Rev1 LSM9DS1 at +-400 uT full scale; Rev2 BMM150 in whole uT."""
    values = np.asarray(microtesla, dtype=np.float64).reshape(3)
    return _int16(values * (32768.0 / 400.0) if revision == 1 else values)


def frame_bytes(rgb: np.ndarray, fmt: int) -> bytes:
    """An RGB frame (uint8 [h, w, 3]) in the camera's pixel format, as Arduino_OV767X stores it: two bytes a pixel,
    high byte first (RGB565, RGB444, YUV422 as Y0 U Y1 V), one for GRAYSCALE (luma)."""
    rgb = np.asarray(rgb, dtype=np.uint8)
    r, g, b = (rgb[..., i].astype(np.int32) for i in range(3))
    if fmt == 2:  # RGB565
        words = ((r >> 3) << 11) | ((g >> 2) << 5) | (b >> 3)
        return words.astype(">u2").tobytes()
    if fmt == 1:  # RGB444 (xxxxRRRR GGGGBBBB)
        words = ((r >> 4) << 8) | ((g >> 4) << 4) | (b >> 4)
        return words.astype(">u2").tobytes()
    luma = (77 * r + 150 * g + 29 * b) >> 8
    if fmt == 4:  # GRAYSCALE
        return luma.astype(np.uint8).tobytes()
    # YUV422: Y0 U Y1 V per pixel pair (BT.601, integer)
    u = np.clip(((-43 * r - 85 * g + 128 * b) >> 8) + 128, 0, 255)
    v = np.clip(((128 * r - 107 * g - 21 * b) >> 8) + 128, 0, 255)
    out = np.empty(rgb.shape[:2] + (2,), dtype=np.uint8)
    out[..., 0] = luma
    out[:, 0::2, 1] = u[:, 0::2]
    out[:, 1::2, 1] = v[:, 0::2]
    return out.tobytes()


def color_bars(width: int, height: int) -> np.ndarray:
    """The OV7670's test pattern: eight vertical color bars."""
    colors = np.array([[255, 255, 255], [255, 255, 0], [0, 255, 255], [0, 255, 0], [255, 0, 255], [255, 0, 0],
                       [0, 0, 255], [0, 0, 0]], dtype=np.uint8)
    columns = (np.arange(width) * 8) // width
    return np.broadcast_to(colors[columns][None, :, :], (height, width, 3)).copy()


@dataclass
class FeedLog:
    """What the feed served, for reports and for replaying the same data through host TFLM."""

    requests: dict[str, int] = field(default_factory=dict)
    audio: list[np.ndarray] = field(default_factory=list)
    motion: list[np.ndarray] = field(default_factory=list)  # the raw counts sent, in the chip's axes
    frames: list[bytes] = field(default_factory=list)
    keep_data: bool = False

    def count(self, kind: str) -> None:
        self.requests[kind] = self.requests.get(kind, 0) + 1


class SensorFeed:
    """Serves one virtual board's sensor requests from `source`, in a thread, until stopped or the board goes. Start
    QEMU in `directory` (its working directory): the board finds the pipes there."""

    def __init__(self, source: SensorSource, keep_data: bool = False):
        self.source = source
        self.log = FeedLog(keep_data=keep_data)
        self.problem: str | None = None  # why the feed stopped early, if it did
        self.directory = Path(tempfile.mkdtemp(prefix="tinydeploy-sensors-"))
        self._request_path = self.directory / REQUEST_PIPE
        self._answer_path = self.directory / ANSWER_PIPE
        os.mkfifo(self._request_path, 0o600)
        os.mkfifo(self._answer_path, 0o600)
        self._stopping = threading.Event()
        self._connected = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"sensor-feed-{self.directory.name}", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        """The board has opened its sensor link (it asked for sensor data at least once)."""
        return self._connected.is_set()

    def stop(self) -> None:
        self._stopping.set()
        # Release the thread if it still waits in open() for a board that never asked for sensor data.
        for path, flags in ((self._answer_path, os.O_RDONLY), (self._request_path, os.O_WRONLY)):
            try:
                os.close(os.open(path, flags | os.O_NONBLOCK))
            except OSError:
                pass
        if threading.current_thread() is not self._thread:
            self._thread.join(2.0)
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SensorFeed:
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    # ---- serving ------------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        answers = requests = -1
        try:
            answers = os.open(self._answer_path, os.O_WRONLY)  # waits for the board's first request
            requests = os.open(self._request_path, os.O_RDONLY)
            if self._stopping.is_set():
                return
            self._connected.set()
            pending = b""
            while not self._stopping.is_set():
                data = os.read(requests, 4096)
                if not data:
                    return  # QEMU exited
                pending += data
                while len(pending) >= REQUEST.size:
                    if pending[0] != REQUEST_SYNC:
                        pending = pending[1:]  # resynchronise (never happens on a healthy link)
                        continue
                    _, kind, seq, count, arg = REQUEST.unpack_from(pending)
                    pending = pending[REQUEST.size:]
                    status, payload = self._answer(chr(kind), count, arg)
                    message = memoryview(ANSWER_HEADER.pack(ANSWER_SYNC, kind, seq, status, len(payload)) + payload)
                    while message:
                        message = message[os.write(answers, message):]
        except OSError as exc:
            if exc.errno not in (errno.EPIPE, errno.EBADF) and not self._stopping.is_set():
                self.problem = f"sensor feed failed: {exc}"
        except Exception as exc:  # a source's bug: the board then sees its sensors go; the report says why
            self.problem = f"sensor feed failed: {type(exc).__name__}: {exc}"
        finally:
            for fd in (answers, requests):
                if fd >= 0:
                    os.close(fd)

    def _answer(self, kind: str, count: int, arg: int) -> tuple[int, bytes]:
        source = self.source
        self.log.count(kind)
        if kind == "H":
            mask = sum(bit for name, bit in PART_BITS.items() if name in source.parts)
            return STATUS_OK, bytes([source.revision, mask])
        if kind == "A":
            if count == 0 or count > MAX_COUNT:
                return STATUS_REFUSED, b""
            values = source.motion(count)
            if values is END or values is REFUSED:
                return (STATUS_END if values is END else STATUS_REFUSED), b""
            counts = motion_counts(source.revision, values)
            if self.log.keep_data:
                self.log.motion.append(counts)
            return STATUS_OK, counts.tobytes()
        if kind == "M":
            values = source.magnet()
            if values is END or values is REFUSED:
                return (STATUS_END if values is END else STATUS_REFUSED), b""
            return STATUS_OK, magnet_counts(source.revision, values).tobytes()
        if kind == "P":
            if count == 0 or count > MAX_COUNT:
                return STATUS_REFUSED, b""
            samples = source.audio(count, arg)
            if samples is END or samples is REFUSED:
                return (STATUS_END if samples is END else STATUS_REFUSED), b""
            samples = np.asarray(samples, dtype="<i2")
            if self.log.keep_data:
                self.log.audio.append(samples)
            return STATUS_OK, samples.tobytes()
        if kind == "C":
            resolution, fmt, pattern = (arg >> 8) & 0x7F, arg & 0xFF, bool(arg & 0x8000)
            if resolution not in RESOLUTIONS or fmt not in FORMATS:
                return STATUS_REFUSED, b""
            width, height = RESOLUTIONS[resolution]
            rgb = color_bars(width, height) if pattern else source.frame(width, height)
            if rgb is END or rgb is REFUSED:
                return (STATUS_END if rgb is END else STATUS_REFUSED), b""
            data = frame_bytes(rgb, fmt)
            if self.log.keep_data:
                self.log.frames.append(data)
            return STATUS_OK, data
        if kind == "B":
            return STATUS_OK, bytes([1 if source.button() else 0])
        return STATUS_REFUSED, b""
