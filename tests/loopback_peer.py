"""A device on a loopback TCP port (pyserial's socket://, as QEMU's serial port), served by a thread: the base of
the test devices in test_link_fuzz.py and test_device_limits.py. A subclass sets its own state, then calls
`super().__init__()`; it says its first words in `connected()` and answers each piece the host sends (split at
`separator`) in `received()`, writing to `self._conn`."""

from __future__ import annotations

import socket
import threading


class LoopbackPeer:
    separator = b"\n"

    def __init__(self):
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._conn: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._server.close()
        if self._conn is not None:
            self._conn.close()
        self._thread.join(5)

    def connected(self) -> None:
        """Called once the host connects."""

    def received(self, piece: bytes) -> None:
        """Called for each piece the host sent (without the separator)."""

    def _serve(self) -> None:
        try:
            self._conn, _ = self._server.accept()
            self.connected()
            buffer = b""
            while data := self._conn.recv(4096):
                buffer += data
                *pieces, buffer = buffer.split(self.separator)
                for piece in pieces:
                    self.received(piece)
        except OSError:
            pass  # the host went away, or the test closed the connection
