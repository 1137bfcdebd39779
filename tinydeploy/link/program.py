"""The program port of a farm board: how a client gives a board on another machine its firmware.

A board service on the exporter's host (tinydeploy.farm.service) listens on a TCP port that labgrid exports as a
NetworkSerialPort named `program`; the client opens it with pyserial (socket://) and sends one request line:

    info                      -> ok board=<profile> image=<elf|bin> kind=<qemu|usb>
    load <bytes> <sha256>     followed by the image's bytes -> ok loaded <sha256[:16]>
    status                    -> ok idle | ok running | ok stopped: <why the board stopped last>
    kill                      -> ok  (testing the tools: kill a virtual board as a crash would)

Replies are lines: any number of `.. <progress>` lines, then `ok <text>` or `err <one-line reason>`.
"""

from __future__ import annotations

import hashlib
import time
from typing import Callable

from tinydeploy.errors import EXIT_FAILED, TinydeployError

MAX_IMAGE_BYTES = 64 * 1024 * 1024  # far above any microcontroller's flash; refuses garbage sizes
LINE_LIMIT = 4096


def parse_fields(text: str) -> dict[str, str]:
    """`key=value key=value` -> dict (what `info` answers)."""
    return dict(part.split("=", 1) for part in text.split() if "=" in part)


class ProgramPort:
    """The client side of a program port: one request, its progress lines, its answer."""

    def __init__(self, url: str, label: str, timeout: float = 10.0):
        import serial

        self.url = url
        self.label = label
        try:
            self._handle = serial.serial_for_url(url, timeout=timeout, write_timeout=timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise TinydeployError(f"the board service of {label} does not answer at {url} "
                                  f"({' '.join(str(exc).split())[:120]})",
                                  "check that `tinydeploy farm serve` runs on the exporter's host",
                                  exit_code=EXIT_FAILED) from None

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> ProgramPort:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def request(self, line: str, payload: bytes = b"", timeout: float = 30.0,
                progress: Callable[[str], None] = lambda _: None) -> str:
        """Send a request (and its payload); the text after `ok`. `err` replies raise a TinydeployError."""
        import serial

        try:
            self._handle.write(line.encode("ascii") + b"\n" + payload)
            self._handle.flush()
            deadline = time.monotonic() + timeout
            pending = b""
            while True:
                pending += self._handle.readline()
                if not pending.endswith(b"\n"):
                    if time.monotonic() > deadline or len(pending) > LINE_LIMIT:
                        raise TinydeployError(f"the board service of {self.label} did not answer "
                                              f"'{line.split()[0]}' within {timeout:g} s",
                                              "check the exporter's host (tinydeploy farm serve)",
                                              exit_code=EXIT_FAILED)
                    continue
                text, pending = pending.decode("utf-8", "replace").strip(), b""
                if text.startswith(".. "):
                    progress(text[3:])
                elif text == "ok" or text.startswith("ok "):
                    return text[3:]
                elif text.startswith("err "):
                    raise TinydeployError(f"{self.label}: {text[4:]}", "see the exporter's log (tinydeploy farm "
                                          "serve)", exit_code=EXIT_FAILED)
                else:
                    raise TinydeployError(f"the board service of {self.label} answered {text[:80]!r}",
                                          "client and exporter must run the same tinydeploy", exit_code=EXIT_FAILED)
        except serial.SerialException as exc:
            raise TinydeployError(f"the connection to the board service of {self.label} broke "
                                  f"({' '.join(str(exc).split())[:120]})", "the exporter may have stopped",
                                  exit_code=EXIT_FAILED) from None

    def load(self, image: bytes, timeout: float, progress: Callable[[str], None]) -> str:
        digest = hashlib.sha256(image).hexdigest()
        return self.request(f"load {len(image)} {digest}", image, timeout, progress)
