"""A board on another machine, reached through a labgrid place: the labgrid runner.

labgrid is the engine (coordinator, exporters, places, reservations); this module is its client through labgrid's
Python API (labgrid.remote.client.ClientSession and the coordinator's gRPC requests). A run reserves the place
(labgrid's scheduler queues clients fairly; a place held by someone else is waited for, then named with its
holder), acquires it, sends the firmware to the board's `program` port (served by `tinydeploy farm serve` on the
exporter's host, which flashes a USB board there or boots a virtual board), gives the `uart` port's pyserial URL
(socket:// or rfc2217://) to the pipeline, and releases the place on every exit path, Ctrl-C included.

One ClientSession per coordinator and process, on an event loop in a background thread, so the coordinator's
updates (an exporter that left, a port that moved) are current whenever a runner asks.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import threading
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.runners.base import Progress, Runner, RunnerCaps, _quiet

if TYPE_CHECKING:
    from tinydeploy.boards import Board

DEFAULT_COORDINATOR = "127.0.0.1:20408"  # labgrid's own default
DEFAULT_PORT = 20408
CONNECT_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 30.0
ACQUIRE_TIMEOUT_S = 300.0
UPLOAD_TIMEOUT_S = 240.0
POLL_S = 0.3
PROGRAM_RESOURCE = "program"
UART_RESOURCE = "uart"


def coordinator_address(value: str | None = None) -> str:
    """HOST:PORT of the coordinator: the option, else $LG_COORDINATOR (labgrid's variable), else labgrid's default."""
    address = (value or os.environ.get("LG_COORDINATOR") or DEFAULT_COORDINATOR).strip()
    if "://" in address:
        raise TinydeployError(f"coordinator address {address!r} is a URL", "give HOST:PORT, e.g. 127.0.0.1:20408")
    host, sep, port = address.rpartition(":")
    if not sep or not host:
        return f"{address}:{DEFAULT_PORT}"
    if not port.isdigit():
        raise TinydeployError(f"coordinator address {address!r} has no port number", "give HOST:PORT")
    return address


def _held_record(address: str, place: str) -> Path:
    """Where a run notes the place it holds (pid), so that a later run can take back a place that a killed run
    (kill -9, a CI job's timeout) left acquired under the same user and host."""
    from tinydeploy.paths import data_home

    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{address}-{place}")
    return data_home() / "farm" / "held" / safe


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _labgrid():
    try:
        from labgrid.remote import client
        from labgrid.remote.generated import labgrid_coordinator_pb2 as pb2
    except ImportError:
        raise TinydeployError("labgrid is not installed (a board farm needs it)",
                              "pip install 'tinydeploy[farm]' (or pip install labgrid)") from None
    return client, pb2


def serial_url(entry, what: str) -> str:
    """The pyserial URL of a labgrid NetworkSerialPort resource (its params: host, port, protocol)."""
    params = entry.args
    extra = entry.extra or {}
    if extra.get("proxy_required"):
        raise TinydeployError(f"{what} is exported in isolated mode (reached through an SSH proxy)",
                              "run that labgrid-exporter without --isolated, on an address clients reach")
    if not entry.avail or not params.get("port"):
        raise TinydeployError(f"{what} is not available (a USB board unplugged, or its exporter restarting)",
                              "plug the board in on the exporter's host and retry", exit_code=EXIT_FAILED)
    protocol = params.get("protocol", "rfc2217")
    scheme = {"raw": "socket", "rfc2217": "rfc2217"}.get(protocol)
    if scheme is None:
        raise TinydeployError(f"{what} speaks {protocol!r}", "export it with protocol raw or rfc2217")
    return f"{scheme}://{params['host']}:{params['port']}"


@dataclass(frozen=True)
class PlacePort:
    """A resource of a place: where it is (exporter/group) and labgrid's entry (params, avail)."""

    exporter: str
    group: str
    name: str
    entry: object


class LabgridSession:
    """labgrid's ClientSession to one coordinator, on its own event loop thread (one per address and process)."""

    _sessions: ClassVar[dict[str, LabgridSession]] = {}
    _sessions_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def get(cls, address: str) -> LabgridSession:
        with cls._sessions_lock:
            session = cls._sessions.get(address)
            if session is None or not session.alive:
                session = cls._sessions[address] = cls(address)
            return session

    def __init__(self, address: str):
        import logging

        self.address = address
        self._client, self._pb2 = _labgrid()
        if not logging.getLogger().handlers:  # labgrid logs its errors on the root logger; ours are one line
            logging.getLogger().addHandler(logging.NullHandler())
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True, name=f"labgrid-{address}")
        self._thread.start()
        self.session = None
        try:
            self.session = self.call(self._start(), CONNECT_TIMEOUT_S, "connecting")
        except BaseException:
            self._loop.call_soon_threadsafe(self._loop.stop)
            raise

    async def _start(self):
        session = self._client.ClientSession(self.address, self._loop)
        try:
            await session.start()
        except BaseException:
            await session.stop()
            await session.close()
            raise
        return session

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.session is not None and not self.session.stopping.is_set()

    @property
    def identity(self) -> str:
        return f"{self.session.gethostname()}/{self.session.getuser()}"

    def call(self, coroutine, timeout: float = REQUEST_TIMEOUT_S, what: str = "asking"):
        """Run a coroutine on the session's loop; labgrid's and gRPC's errors become one-line TinydeployErrors."""
        import grpc

        future = asyncio.run_coroutine_threadsafe(coroutine, self._loop)
        try:
            return future.result(timeout)
        except TimeoutError:
            future.cancel()
            raise TinydeployError(f"labgrid coordinator {self.address} did not answer within {timeout:g} s "
                                  f"({what})", "check that labgrid-coordinator runs there (--coordinator or "
                                  "$LG_COORDINATOR)", exit_code=EXIT_FAILED) from None
        except BaseException as exc:
            future.cancel()
            if isinstance(exc, grpc.aio.AioRpcError):
                raise TinydeployError(f"labgrid coordinator {self.address}: {exc.details()} ({what})",
                                      "check the place with labgrid-client", exit_code=EXIT_FAILED) from None
            if isinstance(exc, self._client.Error):
                text = str(exc)
                if "Could not connect" in text:
                    raise TinydeployError(f"cannot reach labgrid coordinator {self.address}",
                                          "start labgrid-coordinator, or give --coordinator HOST:PORT "
                                          "($LG_COORDINATOR)", exit_code=EXIT_FAILED) from None
                raise TinydeployError(f"labgrid: {text} ({what})", "check the place with labgrid-client",
                                      exit_code=EXIT_FAILED) from None
            raise

    def sync(self) -> None:
        """Wait until the coordinator's updates so far have arrived."""
        self.call(self.session.sync_with_coordinator(), what="syncing")

    async def _request(self, method: str, message):
        return await getattr(self.session.stub, method)(message)

    def request(self, method: str, message, what: str):
        return self.call(self._request(method, message), what=what)

    # ---- places ------------------------------------------------------------------------------------------------

    def place(self, name: str):
        places = self.session.places
        if name not in places:
            known = ", ".join(sorted(places)) or "none"
            raise TinydeployError(f"no place '{name}' on labgrid coordinator {self.address} (places: {known})",
                                  f"create it: labgrid-client -x {self.address} -p {name} create, then add-match "
                                  "EXPORTER/GROUP/*", exit_code=EXIT_FAILED)
        return places[name]

    def on_loop(self, function, *args):
        """Run `function` on the session's loop thread, where labgrid updates the places and resources (no other
        thread sees them change half-way)."""
        async def run():
            return function(*args)
        return self.call(run(), what="reading the farm's state")

    def ports(self, name: str) -> dict[str, PlacePort]:
        """The place's resources by name: the acquired ones when it is ours, else the ones its matches find."""
        return self.on_loop(self._ports_now, name)

    def _ports_now(self, name: str) -> dict[str, PlacePort]:
        place = self.place(name)
        found: dict[str, PlacePort] = {}
        if place.acquired:
            paths = [tuple(path) for path in place.acquired_resources]
        else:
            paths = [(exporter, group, entry.cls, resource)
                     for exporter, groups in self.session.resources.items()
                     for group, entries in groups.items() for resource, entry in entries.items()
                     if "cls" in entry.data]  # an entry without data: its exporter has left
        for exporter, group, cls, resource in paths:
            match = place.getmatch((exporter, group, cls, resource))
            if match is None:
                continue
            entry = self.session.resources.get(exporter, {}).get(group, {}).get(resource)
            if entry is None or "cls" not in entry.data:
                raise TinydeployError(f"exporter {exporter} of place {name} has left the farm (its boards are "
                                      "gone)", "restart it on its host (tinydeploy farm serve)",
                                      exit_code=EXIT_FAILED)
            found[match.rename or resource] = PlacePort(exporter, group, match.rename or resource, entry)
        if not found:
            matches = ", ".join(repr(m) for m in place.matches) or "none"
            raise TinydeployError(f"place {name} matches no board on the farm now (its matches: {matches})",
                                  "start the exporter it names (tinydeploy farm serve), or fix the place's matches "
                                  "(labgrid-client -p PLACE add-match EXPORTER/GROUP/*)", exit_code=EXIT_FAILED)
        return found

    def acquire(self, name: str, timeout: float, progress: Progress) -> str:
        """Reserve the place, wait for it (up to `timeout`; also while another run of yours holds it), acquire
        it; the reservation token."""
        pb2 = self._pb2
        self.sync()
        self._take_back(name, progress)
        request = pb2.CreateReservationRequest(filters={"main": pb2.Reservation.Filter(filter={"name": name})},
                                               prio=0.0)
        token = self.request("CreateReservation", request, f"reserving {name}").reservation.token
        try:
            self._wait_allocated(name, token, timeout, progress)
            self.request("AcquirePlace", pb2.AcquirePlaceRequest(placename=name), f"acquiring {name}")
            self.sync()
            record = _held_record(self.address, name)
            record.parent.mkdir(parents=True, exist_ok=True)
            record.write_text(f"{os.getpid()}\n")
        except BaseException:
            self._cancel(token)
            raise
        return token

    def _take_back(self, name: str, progress: Progress) -> None:
        """Release the place if a run of ours that has ended (its pid is gone) left it acquired."""
        record = _held_record(self.address, name)
        try:
            pid = int(record.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        if _pid_alive(pid) or self.place(name).acquired != self.identity:
            return
        progress(f"place {name} was left acquired by a tinydeploy run that ended (pid {pid}): releasing it")
        self.request("ReleasePlace", self._pb2.ReleasePlaceRequest(placename=name), f"releasing {name}")
        record.unlink(missing_ok=True)
        self.sync()

    def _wait_allocated(self, name: str, token: str, timeout: float, progress: Progress) -> None:
        from labgrid.remote.common import Reservation, ReservationState

        pb2 = self._pb2
        deadline = time.monotonic() + timeout
        said = ""
        while True:
            reply = self.request("PollReservation", pb2.PollReservationRequest(token=token), f"waiting for {name}")
            state = Reservation.from_pb2(reply.reservation).state
            if state in (ReservationState.allocated, ReservationState.acquired):
                return
            if state is not ReservationState.waiting:
                raise TinydeployError(f"the reservation of place {name} became {state.name}",
                                      "check the place with labgrid-client", exit_code=EXIT_FAILED)
            holder = self._holder(name)
            if holder != said:
                progress(f"waiting for place {name} ({holder})")
                said = holder
            if time.monotonic() > deadline:
                mine = self.place(name).acquired == self.identity
                raise TinydeployError(f"place {name} stayed busy for {timeout:g} s: {holder}"
                                      + (" (you, from another run)" if mine else ""),
                                      f"when no run of yours uses it: labgrid-client -p {name} release" if mine else
                                      "wait for it to be released, pass a longer --place-timeout, or choose another "
                                      "place", exit_code=EXIT_FAILED)
            time.sleep(POLL_S)

    def _holder(self, name: str) -> str:
        place = self.place(name)
        if place.acquired:
            since = time.strftime("%H:%M:%S", time.localtime(place.changed))
            return f"held by {place.acquired} since {since}"
        if place.reservation:
            return f"reserved for another client (reservation {place.reservation})"
        return "being allocated"

    def release(self, name: str, token: str | None) -> None:
        pb2 = self._pb2
        try:
            self.sync()
            if self.place(name).acquired == self.identity:
                self.request("ReleasePlace", pb2.ReleasePlaceRequest(placename=name), f"releasing {name}")
            _held_record(self.address, name).unlink(missing_ok=True)
        finally:
            if token:
                self._cancel(token)

    def _cancel(self, token: str) -> None:
        try:
            self.request("CancelReservation", self._pb2.CancelReservationRequest(token=token), "cancelling")
        except TinydeployError:
            pass  # it expires by itself within a minute


_held: weakref.WeakSet[LabgridRunner] = weakref.WeakSet()


@atexit.register
def _release_all() -> None:
    """Places still held when the process exits (a path that skipped stop()) are released here."""
    for runner in list(_held):
        try:
            runner.stop()
        except Exception:
            pass


class LabgridRunner(Runner):
    """A board behind a labgrid place, offered by `tinydeploy farm serve` on its exporter's host.

    Its capabilities are those of the board's own runner (a virtual board's timing stays emulated), except that
    it needs no port here. The place is acquired on the first upload (or attach) and released by stop()."""

    name = "labgrid"
    chosen_by_profile = False  # chosen by --place

    def __init__(self, board: Board, port: str | None = None, index: int = 0, serial_number: str = "", *,
                 place: str = "", coordinator: str | None = None, acquire_timeout: float = ACQUIRE_TIMEOUT_S,
                 borrow: bool = False):
        super().__init__(board, port, index, serial_number)
        if not place:
            raise TinydeployError("the labgrid runner needs a place", "give --place NAME")
        from tinydeploy.runners import runner_class

        own = runner_class(board.upload_runner)
        self._own = own(board, index=index)
        self.caps = RunnerCaps(emulated=own.caps.emulated, counts_instructions=own.caps.counts_instructions,
                               can_reset=own.caps.can_reset)
        self.place = place
        self.coordinator = coordinator_address(coordinator)
        self.acquire_timeout = acquire_timeout
        self.borrow = borrow  # a place you acquired yourself (labgrid-client acquire) is used, not released
        self.label = place
        self.location = ""  # the exporter, once known
        self._token: str | None = None
        self._acquired = False
        self._uploaded = False  # a USB board's port moves after an upload: start() waits for it then
        self._lock = threading.RLock()

    # ---- finding a place's board -------------------------------------------------------------------------------

    @classmethod
    def for_place(cls, place: str, coordinator: str | None = None, board: Board | None = None,
                  acquire_timeout: float = ACQUIRE_TIMEOUT_S, borrow: bool = False) -> LabgridRunner:
        """The runner of a place, its board profile asked from the board service (no need to acquire it)."""
        from tinydeploy.boards import get_board
        from tinydeploy.link.program import ProgramPort, parse_fields

        session = LabgridSession.get(coordinator_address(coordinator))
        session.sync()
        program = _program(session.ports(place), place)
        with ProgramPort(serial_url(program.entry, f"the program port of place {place}"), place) as port:
            info = parse_fields(port.request("info"))
        offered = get_board(info.get("board", ""))
        if board is not None and board.name != offered.name:
            raise TinydeployError(f"place {place} offers a {offered.name} board, not {board.name}",
                                  f"pass --board {offered.name} or leave --board out", exit_code=EXIT_FAILED)
        runner = cls(offered, place=place, coordinator=coordinator, acquire_timeout=acquire_timeout, borrow=borrow)
        runner.location = program.exporter
        return runner

    # ---- the place ---------------------------------------------------------------------------------------------

    @property
    def session(self) -> LabgridSession:
        return LabgridSession.get(self.coordinator)

    def acquire(self, progress: Progress = _quiet) -> None:
        with self._lock:
            if self._acquired:
                return
            session = self.session
            if self.borrow:
                session.sync()
                if session.place(self.place).acquired == session.identity:
                    progress(f"using place {self.place}, acquired by you")
                    self._acquired, self._token = True, None
                    return
            progress(f"acquiring place {self.place} on {self.coordinator}")
            started = time.monotonic()
            self._token = session.acquire(self.place, self.acquire_timeout, progress)
            self._acquired = True
            _held.add(self)
            progress(f"acquired place {self.place} in {time.monotonic() - started:.1f} s")

    def _ports(self) -> tuple[PlacePort, PlacePort]:
        ports = self.session.ports(self.place)
        program = _program(ports, self.place)
        if UART_RESOURCE not in ports:
            raise TinydeployError(f"place {self.place} has no '{UART_RESOURCE}' port (it has: "
                                  f"{', '.join(sorted(ports)) or 'nothing'})",
                                  "match a group offered by tinydeploy farm serve: add-match EXPORTER/GROUP/*",
                                  exit_code=EXIT_FAILED)
        self.location = program.exporter
        return program, ports[UART_RESOURCE]

    def _program_port(self):
        from tinydeploy.link.program import ProgramPort

        program, _ = self._ports()
        return ProgramPort(serial_url(program.entry, f"the program port of place {self.place}"),
                           f"place {self.place} (exporter {program.exporter})")

    def check_firmware(self, firmware) -> None:
        if firmware.board.name != self.board.name:
            raise TinydeployError(f"place {self.place} holds a {self.board.name} board; the firmware was built for "
                                  f"{firmware.board.name}", f"build it for {self.board.name}")

    # ---- the lifecycle -----------------------------------------------------------------------------------------

    def upload(self, firmware, progress: Progress = _quiet) -> None:
        from tinydeploy.link.program import parse_fields

        self.acquire(progress)
        with self._program_port() as port:
            info = parse_fields(port.request("info"))
            if info.get("board") != self.board.name:
                raise TinydeployError(f"place {self.place} now offers a {info.get('board')} board",
                                      "run again (the exporter changed)", exit_code=EXIT_FAILED)
            path = firmware.elf_path if info.get("image") == "elf" else firmware.elf_path.with_name("firmware.bin")
            try:
                image = path.read_bytes()
            except OSError as exc:
                raise TinydeployError(f"cannot read the firmware image {path}: {exc.strerror}",
                                      "build the firmware again") from None
            progress(f"sending {len(image):,} B to place {self.place} on exporter {self.location}")
            started = time.monotonic()
            port.load(image, UPLOAD_TIMEOUT_S, lambda message: progress(f"{self.place}: {message}"))
            self._uploaded = True
            progress(f"flashed on exporter {self.location} in {time.monotonic() - started:.1f} s")

    def attach(self, progress: Progress = _quiet) -> str:
        """Acquire the place and give the URL of the firmware that runs there (monitor, bench)."""
        self.acquire(progress)
        self.url = self.start(progress)
        return self.url

    def start(self, progress: Progress = _quiet) -> str:
        """The board's serial port through labgrid. A USB board's port comes back after its upload (labgrid's
        exporter restarts ser2net for it): wait for it."""
        deadline = time.monotonic() + (20.0 if self._uploaded and not self.caps.emulated else 0.0)
        self._uploaded = False
        while True:
            self.session.sync()
            _, uart = self._ports()
            try:
                self.url = serial_url(uart.entry, f"the serial port of place {self.place} on exporter "
                                                  f"{uart.exporter}")
                return self.url
            except TinydeployError:
                if time.monotonic() > deadline:
                    raise
            time.sleep(POLL_S)

    def stop(self) -> None:
        """Release the place (and its reservation); safe to call more than once."""
        with self._lock:
            if not self._acquired:
                return
            self._acquired = False
            token, self._token = self._token, None
            _held.discard(self)
            if token is not None:  # None: borrowed from your own labgrid-client acquire
                self.session.release(self.place, token)

    def check_alive(self) -> None:
        """After a failed exchange: say whether the exporter left, the board stopped, or its service is gone."""
        self.session.sync()
        program, _ = self._ports()  # raises when the exporter has left
        where = f"place {self.place} (exporter {program.exporter})"
        with self._program_port() as port:
            status = port.request("status", timeout=5.0)
        if status.startswith("stopped:"):
            raise TinydeployError(f"the board of {where} stopped: {status[8:].strip()}",
                                  "the firmware stopped, or its emulator was killed; run again",
                                  exit_code=EXIT_FAILED)

    def kill(self) -> None:
        """Testing the tools: the exporter kills a virtual board as a crash would."""
        with self._program_port() as port:
            port.request("kill", timeout=5.0)

    def instructions(self, latency_us: int) -> int | None:
        return self._own.instructions(latency_us) if self.caps.counts_instructions else None

    def timing_note(self) -> str:
        note = self._own.timing_note()
        return f"{note}; on exporter {self.location}" if note and self.location else note


def _program(ports: dict[str, PlacePort], place: str) -> PlacePort:
    if PROGRAM_RESOURCE not in ports:
        raise TinydeployError(f"place {place} has no '{PROGRAM_RESOURCE}' port (it has: "
                              f"{', '.join(sorted(ports)) or 'nothing'})",
                              "offer its board with tinydeploy farm serve and add-match EXPORTER/GROUP/* to the place",
                              exit_code=EXIT_FAILED)
    return ports[PROGRAM_RESOURCE]
