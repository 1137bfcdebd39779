"""Stimulus files: recorded sensor data that `tinydeploy flash MODEL --board virtual --stimulus FILE` feeds through
the virtual board's sensors (docs/stimulus.md), and how a sensor's values become the model's input.

A replay firmware's `sense` command fills the model's input from one sensor, on the board, through the same
Arduino-style API a sketch uses (td_kit.cpp); input_windows() computes the same bytes on the host, so host TFLM's
outputs can be compared with the board's window by window.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.sensors.feed import frame_bytes, motion_counts
from tinydeploy.sensors.sources import END, REFUSED, SensorSource

INPUT_SENSORS = {"mic": 1, "imu": 2, "camera": 3}
MIC_RATES = (16000, 41667)  # what the nRF52840's PDM library takes
# The model's float input = sensor value * gain + offset; by default: audio in [-1, 1), g and dps as they are,
# pixels in [0, 1].
DEFAULT_GAIN = {"mic": 1.0 / 32768.0, "imu": 1.0, "camera": 1.0 / 255.0}
CAMERA_SIZE = (176, 144)  # QCIF RGB565: the frame a replay firmware reads (the kit's camera mode)
KEYS = {"mic", "mic_rate", "imu", "camera", "input", "input_gain", "input_offset", "revision"}


@dataclass(frozen=True)
class InputMapping:
    """How a replay firmware turns sensor values into the model's input: q = clamp(rint(v * scale + offset))."""

    sensor: str = "none"
    scale: float = 0.0
    offset: float = 0.0
    int16: bool = False
    low: int = -128
    high: int = 127
    imu_channels: int = 6
    height: int = 0
    width: int = 0
    channels: int = 0

    @property
    def code(self) -> int:
        return INPUT_SENSORS.get(self.sensor, 0)

    # exact C literals of the double constants (repr round-trips)
    @property
    def scale_literal(self) -> str:
        return repr(float(self.scale))

    @property
    def offset_literal(self) -> str:
        return repr(float(self.offset))

    def quantize(self, values: np.ndarray) -> bytes:
        """The input bytes for sensor values, computed as the board does (in double, round half to even)."""
        q = np.clip(np.rint(np.asarray(values, dtype=np.float64) * self.scale + self.offset), self.low, self.high)
        return q.astype("<i2" if self.int16 else np.int8).tobytes()


NO_INPUT = InputMapping()


@dataclass
class Stimulus:
    path: Path
    mic: np.ndarray | None = None  # int16 [N]
    mic_rate: int = 16000
    imu: np.ndarray | None = None  # float [N, 3 or 6]: g, dps
    camera: np.ndarray | None = None  # uint8 [F, H, W, 3]
    input: str | None = None
    gain: float | None = None
    offset: float = 0.0
    revision: int = 2

    @property
    def sensors(self) -> list[str]:
        return [name for name in ("mic", "imu", "camera") if getattr(self, name) is not None]

    @property
    def input_sensor(self) -> str:
        if self.input is not None:
            return self.input
        present = self.sensors
        if len(present) != 1:
            raise TinydeployError(f"stimulus {self.path.name} has {' and '.join(present) or 'no sensor data'}; "
                                  "which feeds the model is not clear", "add `input` (mic, imu or camera) to it")
        return present[0]

    def describe(self) -> str:
        parts = []
        if self.mic is not None:
            parts.append(f"microphone {len(self.mic) / self.mic_rate:.2f} s at {self.mic_rate} Hz")
        if self.imu is not None:
            parts.append(f"IMU {len(self.imu)} samples x {self.imu.shape[1]}")
        if self.camera is not None:
            parts.append(f"camera {len(self.camera)} frame(s) {self.camera.shape[2]}x{self.camera.shape[1]}")
        return ", ".join(parts)


def _bad(path: Path, what: str, fix: str = "see docs/stimulus.md for the format") -> TinydeployError:
    return TinydeployError(f"stimulus {path}: {what}", fix)


def _load_wav(path: Path) -> Stimulus:
    try:
        with wave.open(str(path), "rb") as audio:
            if audio.getsampwidth() != 2 or audio.getnchannels() != 1:
                raise _bad(path, f"{audio.getnchannels()} channel(s) of {8 * audio.getsampwidth()} bit",
                           "give 16-bit mono PCM (the microphone's format), e.g. `sox in.wav -b 16 -c 1 out.wav`")
            rate = audio.getframerate()
            samples = np.frombuffer(audio.readframes(audio.getnframes()), dtype="<i2").astype(np.int16)
    except (wave.Error, EOFError) as exc:
        raise _bad(path, f"not a readable WAV file ({exc})") from exc
    return Stimulus(path, mic=samples, mic_rate=rate)


def _scalar(data, key: str, path: Path, kind):
    try:
        value = data[key]
        return kind(value.item() if hasattr(value, "item") else value)
    except (ValueError, TypeError) as exc:
        raise _bad(path, f"`{key}` must be one {kind.__name__}") from exc


def load_stimulus(path: Path) -> Stimulus:
    """A stimulus file (.npz with the keys of docs/stimulus.md, or a 16-bit mono .wav), checked."""
    from tinydeploy.fsutil import check_input_file

    path = Path(path)
    check_input_file(path, "stimulus")
    if path.suffix.lower() == ".wav":
        stimulus = _load_wav(path)
    else:
        try:
            with np.load(path, allow_pickle=False) as data:
                unknown = sorted(set(data.files) - KEYS)
                if unknown:
                    raise _bad(path, f"unknown key(s) {', '.join(unknown)}; keys are {', '.join(sorted(KEYS))}")
                stimulus = Stimulus(path)
                if "mic" in data.files:
                    stimulus.mic = np.asarray(data["mic"])
                if "mic_rate" in data.files:
                    stimulus.mic_rate = _scalar(data, "mic_rate", path, int)
                if "imu" in data.files:
                    stimulus.imu = np.asarray(data["imu"])
                if "camera" in data.files:
                    stimulus.camera = np.asarray(data["camera"])
                if "input" in data.files:
                    stimulus.input = _scalar(data, "input", path, str)
                if "input_gain" in data.files:
                    stimulus.gain = _scalar(data, "input_gain", path, float)
                if "input_offset" in data.files:
                    stimulus.offset = _scalar(data, "input_offset", path, float)
                if "revision" in data.files:
                    stimulus.revision = _scalar(data, "revision", path, int)
        except (OSError, ValueError, EOFError) as exc:
            if isinstance(exc, TinydeployError):
                raise
            raise _bad(path, f"not a readable .npz file ({exc})",
                       "save it with numpy.savez (see docs/stimulus.md), or give a .wav") from exc
    _check(stimulus)
    return stimulus


def _check(s: Stimulus) -> None:
    path = s.path
    if s.mic is not None:
        if s.mic.ndim != 1 or s.mic.dtype != np.int16 or len(s.mic) == 0:
            raise _bad(path, f"`mic` must be a non-empty 1-D int16 array, got {s.mic.dtype} {s.mic.shape}")
        if s.mic_rate not in MIC_RATES:
            raise _bad(path, f"`mic_rate` {s.mic_rate} Hz: the Nano 33 BLE Sense's PDM library records at "
                             f"{' or '.join(map(str, MIC_RATES))} Hz", "resample the recording to 16000 Hz")
    if s.imu is not None:
        if s.imu.ndim != 2 or s.imu.shape[1] not in (3, 6) or len(s.imu) == 0 or s.imu.dtype.kind != "f":
            raise _bad(path, f"`imu` must be float [samples, 3 or 6] (g, then dps), got {s.imu.dtype} {s.imu.shape}")
        if not np.isfinite(s.imu).all():
            raise _bad(path, "`imu` has NaN or infinite values")
        if np.abs(s.imu[:, :3]).max() >= 4.0 or (s.imu.shape[1] == 6 and np.abs(s.imu[:, 3:]).max() >= 2000.0):
            raise _bad(path, "`imu` exceeds the IMU's range (+-4 g, +-2000 dps)")
    if s.camera is not None:
        if s.camera.ndim == 3:
            s.camera = np.repeat(s.camera[..., None], 3, axis=-1)
        if s.camera.ndim != 4 or s.camera.shape[-1] != 3 or s.camera.dtype != np.uint8 or len(s.camera) == 0:
            raise _bad(path, f"`camera` must be uint8 [frames, height, width, 3] (RGB) or [frames, height, width], "
                             f"got {s.camera.dtype} {s.camera.shape}")
    if s.revision not in (1, 2):
        raise _bad(path, f"`revision` must be 1 or 2, got {s.revision}")
    if s.input is not None and s.input not in INPUT_SENSORS:
        raise _bad(path, f"`input` must be one of {', '.join(INPUT_SENSORS)}, got {s.input!r}")
    if s.input is not None and getattr(s, s.input) is None:
        raise _bad(path, f"`input` is {s.input} but the file has no `{s.input}` data")
    if s.gain is not None and not (np.isfinite(s.gain) and s.gain != 0.0) or not np.isfinite(s.offset):
        raise _bad(path, "`input_gain` must be finite and non-zero, `input_offset` finite")


def input_mapping(model, stimulus: Stimulus) -> InputMapping:
    """How the board turns the stimulus's input sensor into this model's input; refuses a model it cannot feed."""
    sensor = stimulus.input_sensor
    tensor = model.tensors[model.inputs[0]]
    if len(model.inputs) != 1 or tensor.dtype not in ("int8", "int16") or len(tensor.quant.scales) != 1:
        raise TinydeployError(f"{model.name} takes {len(model.inputs)} input(s) of {tensor.dtype}; a sensor replay "
                              "fills one per-tensor quantized int8 or int16 input",
                              "replay with a model of one int8/int16 input")
    scale, zero_point = float(tensor.quant.scales[0]), int(tensor.quant.zero_points[0])
    gain = stimulus.gain if stimulus.gain is not None else DEFAULT_GAIN[sensor]
    int16 = tensor.dtype == "int16"
    elements = int(np.prod(tensor.shape))
    options = dict(sensor=sensor, scale=gain / scale, offset=stimulus.offset / scale + zero_point, int16=int16,
                   low=-32768 if int16 else -128, high=32767 if int16 else 127)
    if sensor == "imu":
        channels = stimulus.imu.shape[1]
        if elements % channels:
            raise TinydeployError(f"{model.name}'s input has {elements} values, not a whole number of {channels}-axis "
                                  "IMU samples", "give an IMU recording with as many axes as the model takes")
        return InputMapping(**options, imu_channels=channels)
    if sensor == "camera":
        shape = tuple(tensor.shape)
        if len(shape) != 4 or shape[0] != 1 or shape[3] not in (1, 3):
            raise TinydeployError(f"{model.name}'s input {shape} is not an image ([1, height, width, 1 or 3])",
                                  "replay camera frames into an image model")
        if shape[1] > CAMERA_SIZE[1] or shape[2] > CAMERA_SIZE[0]:
            raise TinydeployError(f"{model.name}'s input {shape[2]}x{shape[1]} is larger than the camera's "
                                  f"{CAMERA_SIZE[0]}x{CAMERA_SIZE[1]} frame", "use a model with a smaller input")
        return InputMapping(**options, height=shape[1], width=shape[2], channels=shape[3])
    return InputMapping(**options)


def input_window_count(mapping: InputMapping, stimulus: Stimulus, elements: int) -> int:
    """How many whole model inputs the stimulus holds."""
    if mapping.sensor == "mic":
        return len(stimulus.mic) // elements
    if mapping.sensor == "imu":
        return len(stimulus.imu) // (elements // mapping.imu_channels)
    return len(stimulus.camera)


def _library_motion(revision: int, counts: np.ndarray) -> np.ndarray:
    """The floats the board's IMU library makes of the raw counts (td_bsp imu.cpp: the libraries' formulas)."""
    counts = counts.astype(np.int64)
    if revision == 1:
        accel = (counts[:, :3] * 4.0 / 32768.0).astype(np.float32)
        gyro = (counts[:, 3:] * 2000.0 / 32768.0).astype(np.float32)
    else:  # board x = -chip y, y = -chip x; float32 division by 8192 and 16.384 as in the library
        board = counts[:, [1, 0, 2, 4, 3, 5]] * np.array([-1, -1, 1, -1, -1, 1])
        accel = board[:, :3].astype(np.float32) / np.float32(8192.0)
        gyro = board[:, 3:].astype(np.float32) / np.float32(16.384)
    return np.concatenate([accel, gyro], axis=1)


def camera_frame(stimulus: Stimulus, index: int, width: int = CAMERA_SIZE[0],
                 height: int = CAMERA_SIZE[1]) -> np.ndarray:
    """Frame `index` at the size the camera reads (nearest pixel), RGB."""
    frame = stimulus.camera[index]
    rows = np.arange(height) * frame.shape[0] // height
    columns = np.arange(width) * frame.shape[1] // width
    return frame[rows][:, columns]


def input_windows(mapping: InputMapping, stimulus: Stimulus, elements: int, count: int) -> list[bytes]:
    """The model inputs the board's `sense` makes of the stimulus, computed on the host the same way."""
    if mapping.sensor == "mic":
        samples = stimulus.mic[:count * elements].astype(np.float64).reshape(count, elements)
        return [mapping.quantize(row) for row in samples]
    if mapping.sensor == "imu":
        per_window = elements // mapping.imu_channels
        rows = stimulus.imu[:count * per_window]
        full = rows if rows.shape[1] == 6 else np.concatenate([rows, np.zeros_like(rows)], axis=1)
        values = _library_motion(stimulus.revision, motion_counts(stimulus.revision, full))
        values = values[:, :mapping.imu_channels].astype(np.float64).reshape(count, elements)
        return [mapping.quantize(row) for row in values]
    windows = []
    for index in range(count):
        data = np.frombuffer(frame_bytes(camera_frame(stimulus, index), 2), dtype=">u2").astype(np.uint32)
        words = data.reshape(CAMERA_SIZE[1], CAMERA_SIZE[0])
        rows = np.arange(mapping.height) * CAMERA_SIZE[1] // mapping.height
        columns = np.arange(mapping.width) * CAMERA_SIZE[0] // mapping.width
        words = words[rows][:, columns]
        r5, g6, b5 = words >> 11, (words >> 5) & 0x3F, words & 0x1F
        rgb = np.stack([(r5 << 3) | (r5 >> 2), (g6 << 2) | (g6 >> 4), (b5 << 3) | (b5 >> 2)], axis=-1)
        values = (77 * rgb[..., 0] + 150 * rgb[..., 1] + 29 * rgb[..., 2]) >> 8 if mapping.channels == 1 else rgb
        windows.append(mapping.quantize(values.astype(np.float64).reshape(-1)))
    return windows


class StimulusSource(SensorSource):
    """Serves a recording, in order, once: then its streams end (END), as a recording does."""

    def __init__(self, stimulus: Stimulus):
        self.stimulus = stimulus
        self.revision = stimulus.revision
        # an IMU recording brings the whole IMU (its magnetometer answers begin(), with no data)
        present = {"mic": ("mic",), "imu": ("imu", "magnet"), "camera": ("camera",)}
        self.parts = frozenset(part for key, parts in present.items() if getattr(stimulus, key) is not None
                               for part in parts)
        self._mic = self._imu = self._frame = 0

    def audio(self, count: int, rate: int):
        mic = self.stimulus.mic
        if mic is None or self._mic >= len(mic):
            return END
        if rate != self.stimulus.mic_rate:
            return REFUSED  # the sketch records at another rate than the recording was made
        chunk = mic[self._mic:self._mic + count]
        self._mic += len(chunk)
        return chunk

    def motion(self, count: int):
        imu = self.stimulus.imu
        if imu is None or self._imu >= len(imu):
            return END
        rows = imu[self._imu:self._imu + count]
        self._imu += len(rows)
        return rows if rows.shape[1] == 6 else np.concatenate([rows, np.zeros_like(rows)], axis=1)

    def frame(self, width: int, height: int):
        camera = self.stimulus.camera
        if camera is None or self._frame >= len(camera):
            return END
        self._frame += 1
        return camera_frame(self.stimulus, self._frame - 1, width, height)
