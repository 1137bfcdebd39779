"""pytest plugin for hardware-in-the-loop tests (registered through the `pytest11` entry point).

    def test_kws_latency(board):
        device = board.flash("kws.tflite")          # built and flashed once per model, cached across tests
        assert device.compare_with_host(5) == []    # outputs equal to host TFLM
        result = device.bench(runs=20)               # latency recorded in the JUnit XML and OpenMetrics file
        assert result.latency_us.median < 5_000
        assert device.ram().fits

Options: --td-board NAME (default virtual), --td-port PORT (repeatable or comma-separated: one real board
each), --td-virtual N (N virtual boards), --td-place PLACE (repeatable or comma-separated: boards of a labgrid
farm; or the RemotePlaces of labgrid's --lg-env), --td-coordinator, --td-engine, --td-profile (firmware
timing each op, native or TFLM: device.profile()), --td-build-dir, --td-log-dir (a log per test), --td-metrics
FILE (OpenMetrics text). With several boards the `board` fixture is parametrised (one test per board; with
places and pytest-xdist's `-n N`, one worker per place shares out the tests instead); `all_boards` gives all of
them to one test. The plugin does nothing unless a test uses its fixtures.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

METRICS_KEY = pytest.StashKey["TdSession"]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tinydeploy", "tinydeploy hardware-in-the-loop")
    group.addoption("--td-board", default=None, metavar="NAME",
                    help="board profile the tests run on (default: virtual, the QEMU board; with --td-place: the "
                         "places' board)")
    group.addoption("--td-port", action="append", default=[], metavar="PORT",
                    help="serial port of a real board; repeat it or separate ports with commas for several boards")
    group.addoption("--td-virtual", type=int, default=1, metavar="N",
                    help="number of virtual boards (with --td-board virtual; default 1)")
    group.addoption("--td-place", action="append", default=[], metavar="PLACE",
                    help="a labgrid place of a board farm; repeat it or separate places with commas for several")
    group.addoption("--td-coordinator", default=None, metavar="HOST:PORT",
                    help="labgrid coordinator of the places (default: --lg-coordinator, $LG_COORDINATOR, "
                         "127.0.0.1:20408)")
    group.addoption("--td-place-timeout", type=float, default=300.0, metavar="S",
                    help="seconds to wait while a place is busy (default 300)")
    group.addoption("--td-engine", default=None, metavar="ENGINE", help="native or tflm (default: the board's)")
    group.addoption("--td-profile", action="store_true", default=False,
                    help="build firmware that times each op, native or TFLM (device.profile(); latencies then "
                         "include the clock reads between ops)")
    group.addoption("--td-build-dir", default=None, metavar="DIR",
                    help="where firmware projects are built (default: in pytest's temporary directory)")
    group.addoption("--td-log-dir", default=None, metavar="DIR",
                    help="one log file per test (default: td-logs in pytest's temporary directory)")
    group.addoption("--td-metrics", default=None, metavar="FILE",
                    help="write latency, RAM and flash of every test to FILE in OpenMetrics text format")


def _ports(config: pytest.Config) -> list[str]:
    return [p.strip() for option in config.getoption("td_port") for p in option.split(",") if p.strip()]


def _board_name(config: pytest.Config) -> str:
    return config.getoption("td_board") or "virtual"


def _lg_env_places(config: pytest.Config) -> tuple[list[str], str | None]:
    """The RemotePlace names of labgrid's --lg-env file (labgrid's own pytest plugin option) and its coordinator."""
    path = getattr(config.option, "lg_env", None)
    if not path:
        return [], None
    from labgrid import Environment
    from labgrid.factory import target_factory

    env = Environment(config_file=path)
    places = [name for role in env.config.get_targets().values()
              for name in target_factory.normalize_config(role)[0].get("RemotePlace", {})]
    coordinator = getattr(config.option, "lg_coordinator", None) or env.config.get_option("coordinator_address", None)
    return places, coordinator


def _places(config: pytest.Config) -> tuple[list[str], str | None, bool]:
    """(places, coordinator, borrowed): --td-place, else labgrid's --lg-env (whose places you acquire yourself with
    labgrid-client, as labgrid's workflow has it: they are used as they are and not released)."""
    places = [p.strip() for option in config.getoption("td_place") for p in option.split(",") if p.strip()]
    coordinator = config.getoption("td_coordinator") or getattr(config.option, "lg_coordinator", None)
    borrowed = not places
    if places:
        places = list(dict.fromkeys(places))
    else:
        places, env_coordinator = _lg_env_places(config)
        coordinator = coordinator or env_coordinator
    return _worker_share(config, places), coordinator, borrowed


def _worker_share(config: pytest.Config, places: list[str]) -> list[str]:
    """Under pytest-xdist (-n N) each worker takes one place (worker K the K-th) and the tests are shared out
    among the workers; without it every test runs on every place."""
    workerinput = getattr(config, "workerinput", None)
    if not places or workerinput is None:
        return places
    return [places[int(str(workerinput.get("workerid", "gw0"))[2:] or 0) % len(places)]]


def _runners(config: pytest.Config) -> list:
    """One runner per board of the run: a port each for boards on ports, a place each for a farm's boards,
    --td-virtual N emulated ones."""
    from tinydeploy.boards import get_board
    from tinydeploy.runners import runner_class, runner_for, runner_for_place

    places, coordinator, borrowed = _places(config)
    if places:
        board = get_board(config.getoption("td_board")) if config.getoption("td_board") else None
        runners = [runner_for_place(place, coordinator, board, config.getoption("td_place_timeout"), borrowed)
                   for place in places]
        kinds = {runner.board.name for runner in runners}
        if len(kinds) > 1:
            from tinydeploy.errors import TinydeployError

            raise TinydeployError(f"the places offer different boards ({', '.join(sorted(kinds))})",
                                  "run the suite once per board profile (--td-board NAME picks the places' board)")
        return runners
    board = get_board(_board_name(config))
    if runner_class(board.upload_runner).caps.needs_port:
        return [runner_for(board, port=port) for port in _ports(config)]
    return [runner_for(board, index=i) for i in range(max(1, config.getoption("td_virtual")))]


def _slot_labels(config: pytest.Config) -> list[str]:
    places = _places(config)[0]
    return places if places else [runner.label for runner in _runners(config)]


def pytest_configure(config: pytest.Config) -> None:
    """Bad --td-* options fail the run at once (cheap: the board profiles are small TOML files)."""
    from tinydeploy.boards import ENGINES, get_board
    from tinydeploy.errors import TinydeployError
    from tinydeploy.runners import runner_class

    try:
        board = get_board(_board_name(config))
    except TinydeployError as exc:
        raise pytest.UsageError(f"--td-board: {exc.one_line()}") from None
    engine = config.getoption("td_engine")
    if engine is not None and engine not in ENGINES:
        raise pytest.UsageError(f"--td-engine must be one of {', '.join(ENGINES)}")
    ports = _ports(config)
    if config.getoption("td_place"):
        if ports:
            raise pytest.UsageError("give either --td-port (boards here) or --td-place (a farm's boards)")
        workers = getattr(config.option, "numprocesses", None)
        places = _places(config)[0]
        if isinstance(workers, int) and workers > len(places) and getattr(config, "workerinput", None) is None:
            raise pytest.UsageError(f"-n {workers} starts more workers than there are places ({len(places)}): "
                                    "give at most one worker per place")
        return
    needs_port = runner_class(board.upload_runner).caps.needs_port
    if not needs_port and ports:
        raise pytest.UsageError(f"--td-port is for boards on a serial port; with --td-board {board.name} use "
                                "--td-virtual N")
    if needs_port and not ports:
        raise pytest.UsageError(f"--td-board {board.name} needs --td-port (the board's serial port)")


def _is_ours(metafunc: pytest.Metafunc, name: str) -> bool:
    definitions = getattr(metafunc, "_arg2fixturedefs", {}).get(name)
    return bool(definitions) and getattr(definitions[-1].func, "__module__", None) == __name__


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "board" in metafunc.fixturenames and _is_ours(metafunc, "board"):
        labels = _slot_labels(metafunc.config)
        if len(labels) > 1:
            metafunc.parametrize("board", range(len(labels)), indirect=True, ids=labels)


class MetricsRecorder:
    """Samples for the OpenMetrics file: (family, labels, value), families declared with their unit."""

    FAMILIES = {
        "tinydeploy_latency_microseconds": ("gauge", "microseconds", "inference latency on the board"),
        "tinydeploy_flash_bytes": ("gauge", "bytes", "firmware flash size (text + data)"),
        "tinydeploy_ram_used_bytes": ("gauge", "bytes", "RAM in use: static + stack + heap high-water"),
        "tinydeploy_ram_free_bytes": ("gauge", "bytes", "board RAM left"),
    }

    def __init__(self) -> None:
        # one value per family and label set (OpenMetrics allows no duplicates): the last measured wins
        self.samples: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        self._lock = threading.Lock()

    def add(self, family: str, labels: dict[str, str], value: float) -> None:
        with self._lock:
            self.samples[(family, tuple(labels.items()))] = value

    @staticmethod
    def _escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    def render(self) -> str:
        lines = []
        for family, (kind, unit, help_text) in self.FAMILIES.items():
            samples = [(labels, value) for (name, labels), value in self.samples.items() if name == family]
            if not samples:
                continue
            lines += [f"# TYPE {family} {kind}", f"# UNIT {family} {unit}", f"# HELP {family} {help_text}"]
            for labels, value in samples:
                label_text = ",".join(f'{k}="{self._escape(v)}"' for k, v in labels)
                number = int(value) if float(value).is_integer() else round(value, 3)
                lines.append(f"{family}{{{label_text}}} {number}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


class Slot:
    """One physical or virtual board (its runner) and the firmware it currently runs."""

    def __init__(self, runner) -> None:
        self.runner = runner
        self.device = None

    def close(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None
        self.runner.stop()


class TdSession:
    """What the plugin holds for the whole run: board profile, boards, built firmware, metrics."""

    def __init__(self, config: pytest.Config, build_dir: Path, log_dir: Path) -> None:
        from tinydeploy.boards import get_board
        from tinydeploy.engines import get_engine

        self.slots = [Slot(runner) for runner in _runners(config)]
        if any(not slot.runner.chosen_by_profile for slot in self.slots):
            _stop_on_sigterm()  # a CI job's SIGTERM must still release the farm's places
        # options were checked in pytest_configure; a farm's places say their board
        self.board = self.slots[0].runner.board if self.slots else get_board(_board_name(config))
        self.engine = config.getoption("td_engine") or self.board.default_engine
        self.profile = bool(config.getoption("td_profile")) and get_engine(self.engine).profiles_ops
        self.build_dir = build_dir
        self.log_dir = log_dir
        self.metrics = MetricsRecorder()
        self._firmware: dict[tuple[str, str, str], object] = {}
        self._build_lock = threading.Lock()

    def firmware(self, model, log):
        from tinydeploy.engines import EngineOptions
        from tinydeploy.flow import build_firmware

        key = (model.sha256, self.board.name, self.engine)
        with self._build_lock:
            if key not in self._firmware:
                directory = self.build_dir / f"{_safe(model.name)}-{model.sha256[:8]}-{self.board.name}-{self.engine}"
                self._firmware[key] = build_firmware(model, self.board, self.engine, directory, log,
                                                     options=EngineOptions(profile=self.profile))
            return self._firmware[key]

    def close(self) -> None:
        for slot in self.slots:
            slot.close()


def _stop_on_sigterm() -> None:
    """SIGTERM ends the run like Ctrl-C (pytest then runs the fixtures' teardown), unless someone set a handler."""
    import signal

    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, lambda signum, frame: signal.default_int_handler(signum, frame))


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:120] or "test"


def _load_model(model, calib: str | None):
    from tinydeploy.hil.models import model_from_bytes
    from tinydeploy.model.tflite import TfliteModel

    if isinstance(model, TfliteModel):
        return model
    if isinstance(model, (bytes, bytearray)):
        return model_from_bytes(bytes(model))
    from tinydeploy.flow import load_model_for_flash

    return load_model_for_flash(Path(model), calib, lambda message: None)


class HilDevice:
    """A flashed board as a test sees it: the hil Device, with every measurement recorded for the test."""

    def __init__(self, board: HilBoard, device) -> None:
        self._board = board
        self.device = device
        self.firmware = device.firmware
        self.info = device.info
        board._record("td_flash_bytes", "tinydeploy_flash_bytes", self.firmware.flash_bytes)

    @property
    def flash_bytes(self) -> int:
        return self.firmware.flash_bytes

    def infer(self, data: bytes) -> bytes:
        """One inference of a single-input, single-output model: raw bytes in and out."""
        return self.device.infer(data)

    def infer_tensors(self, tensors: list[bytes]) -> list[bytes]:
        """One inference: one bytes per input tensor in (model order), one per output tensor out."""
        return self.device.infer_tensors(tensors)

    def run(self, inputs: list) -> list:
        """The output of each input (bytes -> bytes, or a list of input tensors -> a list of output tensors)."""
        return self.device.run(inputs)

    def compare_with_host(self, count: int = 5, seed: int = 0) -> list[int]:
        return self.device.compare_with_host(count, seed)

    def bench(self, runs: int = 20, warmup: int = 2, data=None):
        result = self.device.bench(runs, warmup, data)
        for stat in ("median", "p95", "min", "max"):
            self._board._record(f"td_latency_us_{stat}", "tinydeploy_latency_microseconds",
                                getattr(result.latency_us, stat), stat=stat)
        self._board._record("td_latency_emulated", None, str(result.emulated).lower())
        return result

    def profile(self, runs: int = 10):
        """Each op's time on the device (tinydeploy.flow.OpProfile rows), from a --td-profile build (native or
        TFLM engine); recorded as td_op<i>_us properties."""
        from tinydeploy.flow import profile_on_device
        from tinydeploy.golden import random_samples

        rows = profile_on_device(self.device, random_samples(self.firmware.model, 1, seed=0)[0], runs)
        for row in rows:
            self._board._record(f"td_op{row.index}_us", None, round(row.microseconds, 2))
        return rows

    def ram(self):
        usage = self.device.ram()
        self._board._record("td_ram_used_bytes", "tinydeploy_ram_used_bytes", usage.total_bytes)
        self._board._record("td_ram_free_bytes", "tinydeploy_ram_free_bytes", usage.free_bytes)
        self._board._record("td_stack_bytes", None, usage.stack_bytes)
        return usage

    def command(self, raw: str, timeout: float | None = None) -> list[str]:
        return self.device.command(raw, timeout)


class HilBoard:
    """The `board` fixture: one board (virtual or real) for the current test."""

    def __init__(self, session: TdSession, index: int, node: pytest.Item) -> None:
        self._session = session
        self._slot = session.slots[index]
        self._node = node
        self.index = index
        self.profile = session.board
        self.engine = session.engine
        self.runner = self._slot.runner  # what the board can do: runner.caps (emulated, needs_port, ...)
        self.label = self.runner.label
        self.log_path = session.log_dir / f"{_safe(node.nodeid)}.log"
        self._model_name = ""

    def log(self, text: str) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a", encoding="utf-8") as handle:
            stamp = time.strftime("%H:%M:%S")
            for line in str(text).splitlines() or [""]:
                handle.write(f"{stamp} [{self.label}] {line}\n")

    def _record(self, property_name: str, family: str | None, value, **labels: str) -> None:
        self._node.user_properties.append((property_name, value))
        if family is not None:
            self._session.metrics.add(family, {"test": self._node.nodeid, "board": self.profile.name,
                                               "target": self.label, "model": self._model_name,
                                               "engine": self.engine, **labels}, float(value))

    def flash(self, model, calib: str | None = None) -> HilDevice:
        """Build (once per model) and start the firmware for `model` (.tflite/.keras path, bytes or TfliteModel);
        a board already running it is reused."""
        from tinydeploy.flow import Device

        tflite = _load_model(model, calib)
        firmware = self._session.firmware(tflite, self.log)
        slot = self._slot
        if slot.device is not None and slot.device.firmware.key == firmware.key:
            try:
                slot.device.runner.check_alive()
            except Exception:  # it died (a previous test may have killed it): start afresh
                slot.close()
        if slot.device is None or slot.device.firmware.key != firmware.key:
            if slot.device is not None:
                slot.device.close()
                slot.device = None
            self.log(f"flashing {tflite.name} ({tflite.sha256[:12]}) on {self.label}")
            slot.device = Device.start(firmware, slot.runner, self.log)
        slot.device.log = self.log
        self._model_name = tflite.name
        self._node.user_properties.append(("td_board", self.profile.name))
        self._node.user_properties.append(("td_model", tflite.name))
        return HilDevice(self, slot.device)


@pytest.fixture(scope="session")
def td_session(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    config = request.config
    base = tmp_path_factory.getbasetemp()
    build_dir = Path(config.getoption("td_build_dir") or base / "td-firmware").resolve()
    log_dir = Path(config.getoption("td_log_dir") or base / "td-logs").resolve()
    session = TdSession(config, build_dir, log_dir)
    config.stash[METRICS_KEY] = session
    yield session
    session.close()


@pytest.fixture
def board(request: pytest.FixtureRequest, td_session: TdSession) -> HilBoard:
    """One board for this test (parametrised over all boards when there are several)."""
    index = getattr(request, "param", 0)
    hil_board = HilBoard(td_session, index, request.node)
    request.node.user_properties.append(("td_target", hil_board.label))
    hil_board.log(f"---- {request.node.nodeid}")
    return hil_board


@pytest.fixture
def all_boards(request: pytest.FixtureRequest, td_session: TdSession) -> list[HilBoard]:
    """Every board of the run, for tests that use several at once."""
    return [HilBoard(td_session, i, request.node) for i in range(len(td_session.slots))]


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("td_metrics", None)
    if not path:
        return
    td = session.config.stash.get(METRICS_KEY, None)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(td.metrics.render() if td is not None else "# EOF\n", encoding="utf-8")
