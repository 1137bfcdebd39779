"""What a virtual board's sensors see: a SensorSource answers the feed's requests in physical units (g, dps, uT,
int16 audio samples, RGB frames). KitAtRest is a kit lying on a desk in a quiet room where someone says a word
now and then, all generated; tinydeploy.sensors.stimulus.StimulusSource replays a recording.
"""

from __future__ import annotations

import math
import threading

import numpy as np

END = object()  # no (more) data of this kind: a cut stream, an ended recording
REFUSED = object()  # the source cannot serve this request (another sample rate than recorded, ...)

ALL_PARTS = frozenset({"imu", "magnet", "mic", "camera", "button"})
# Faults a virtual kit can be given (lab check's testing option): part -> what goes wrong.
FAULTS = {
    "imu": "the IMU's data stream is cut (the chip answers begin(), then no samples)",
    "microphone": "the microphone's data pin is silent (every sample 0)",
    "camera": "the camera sends constant frames",
    "button": "the button never closes",
}


class SensorSource:
    """Answers for one virtual kit. `revision` 1 or 2 (which IMU answers); `parts` present."""

    revision: int = 2
    parts: frozenset[str] = ALL_PARTS

    def motion(self, count: int):
        """[count, 6] float: accelerometer x, y, z (g) and gyroscope x, y, z (dps), board axes; or END."""
        return END

    def magnet(self):
        """[3] float, uT; or END."""
        return END

    def audio(self, count: int, rate: int):
        """[count] int16 samples at `rate` Hz; END when over, REFUSED for a rate it does not have."""
        return END

    def frame(self, width: int, height: int):
        """uint8 [height, width, 3] RGB; or END."""
        return END

    def button(self) -> bool:
        return False


def spoken_word(rate: int, seconds: float = 0.45, seed: int = 0) -> np.ndarray:
    """A generated vowel-like word (float, peak ~0.3 of full scale): a 130 Hz voice with three formants under a
    smooth envelope. Generated, not recorded: it only has to look like speech to a level meter."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(rate * seconds)) / rate
    pitch = 130.0 * (1.0 + 0.08 * np.sin(2 * math.pi * 2.5 * t))
    phase = 2 * math.pi * np.cumsum(pitch) / rate
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    formants = sum(a * np.sin(2 * math.pi * f * t + rng.uniform(0, 6)) for f, a in ((700, 1.0), (1200, 0.6),
                                                                                  (2600, 0.3)))
    envelope = np.sin(math.pi * t / seconds) ** 2
    word = envelope * (0.6 * voice + 0.4 * voice * formants)
    return 0.3 * word / np.abs(word).max()


class KitAtRest(SensorSource):
    """A kit at rest on a desk: gravity plus sensor noise on the IMU, a quiet room with a word every second on the
    microphone, a lit scene on the camera. Each board gets its own tilt and noise (seed). `faults`: parts of
    FAULTS made to fail. The button is pressed by calling press() (lab check --interactive's simulated press)."""

    def __init__(self, revision: int = 2, seed: int = 0, faults: frozenset[str] = frozenset(),
                 parts: frozenset[str] = ALL_PARTS):
        self.revision = revision
        self.parts = frozenset(parts)
        self.faults = frozenset(faults)
        self._rng = np.random.default_rng(seed)
        tilt = self._rng.normal(0.0, math.radians(3.0), 2)  # a desk is never quite level
        self._gravity = np.array([math.sin(tilt[0]), math.sin(tilt[1]), math.cos(tilt[0]) * math.cos(tilt[1])])
        self._gyro_bias = self._rng.normal(0.0, 0.5, 3)
        self._field = np.array([22.0, -4.0, -41.0]) + self._rng.normal(0.0, 1.0, 3)
        self._audio_position = 0
        self._word = None
        self._pressed = threading.Event()

    def motion(self, count: int):
        if "imu" in self.faults:
            return END
        accel = self._gravity + self._rng.normal(0.0, 0.004, (count, 3))
        gyro = self._gyro_bias + self._rng.normal(0.0, 0.2, (count, 3))
        return np.concatenate([accel, gyro], axis=1)

    def magnet(self):
        return self._field + self._rng.normal(0.0, 0.3, 3)

    def audio(self, count: int, rate: int):
        if "microphone" in self.faults:
            return np.zeros(count, dtype=np.int16)  # a silent data pin decimates to a constant
        if self._word is None or self._word[0] != rate:
            self._word = (rate, spoken_word(rate))
        word = self._word[1]
        room = self._rng.normal(0.0, 60.0, count)  # a quiet room at the library's default gain
        position = (self._audio_position + np.arange(count)) % rate  # one word in every second
        start = rate // 4
        inside = (position >= start) & (position < start + len(word))
        room[inside] += 32767.0 * word[position[inside] - start]
        self._audio_position += count
        return np.clip(np.round(room), -32768, 32767).astype(np.int16)

    def frame(self, width: int, height: int):
        if "camera" in self.faults:
            return np.full((height, width, 3), 128, dtype=np.uint8)
        y, x = np.mgrid[0:height, 0:width]
        scene = np.stack([96 + 96 * x / width, 64 + 128 * y / height, 160 - 64 * x / width], axis=-1)
        inside = (x - width * 0.6) ** 2 + (y - height * 0.45) ** 2 < (min(width, height) * 0.22) ** 2
        scene[inside] = (220, 180, 140)  # a face-coloured disc in front of a wall
        scene += self._rng.normal(0.0, 3.0, scene.shape)  # sensor noise
        return np.clip(np.round(scene), 0, 255).astype(np.uint8)

    def press(self) -> None:
        """Hold the button down (until the board has seen it once)."""
        if "button" not in self.faults:
            self._pressed.set()

    def button(self) -> bool:
        if self._pressed.is_set():
            self._pressed.clear()
            return True
        return False
