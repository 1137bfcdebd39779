"""Faults, as the user meets them through the real CLI: QEMU or a board vanishing mid-run, PlatformIO dying
mid-build, a read-only or full disk, Ctrl-C (and SIGTERM) at each stage. Each must end in one clear line and
a documented exit code, with no process left behind (checked in the process table), no half-written project,
and the user's files untouched without --force."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import mlperf_model, run_cli
from tests.tflite_edit import edit_tflite

MANIFEST = ".tinydeploy.json"


# ---- the process table ------------------------------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[int, int, int, str] | None:
    """(parent pid, session id, start time, comm) of a live process, from /proc/PID/stat."""
    try:
        data = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = data[data.index("(") + 1:data.rindex(")")]
    fields = data[data.rindex(")") + 2:].split()
    if fields[0] == "Z":
        return None  # a zombie is dead: it only waits for its parent to read its status
    return int(fields[1]), int(fields[3]), int(fields[19]), comm


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _all_processes() -> dict[int, tuple[int, int, int, str]]:
    table = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _proc_stat(int(entry))
            if stat is not None:
                table[int(entry)] = stat
    return table


class ProcessWatch:
    """Records every descendant of a process (and their sessions) while it runs, so that after it died the
    test can still find what it started: orphans lose their parent, but keep their session."""

    def __init__(self, root: int):
        self.root = root
        self.seen: dict[tuple[int, int], str] = {}  # (pid, start time) -> command line
        self.sessions = {root}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        # Ends when the watched process is gone (its orphans keep their sessions, which leftovers() checks), so
        # a test that never asks for leftovers does not leave a thread reading /proc into the next tests.
        while not self._stop.is_set() and _proc_stat(self.root) is not None:
            self.scan()
            time.sleep(0.02)

    def scan(self) -> list[tuple[int, str]]:
        table = _all_processes()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _sid, _start, _comm) in table.items():
            children.setdefault(ppid, []).append(pid)
        found, todo = [], list(children.get(self.root, []))
        while todo:
            pid = todo.pop()
            if pid not in table:
                continue
            _ppid, sid, start, comm = table[pid]
            self.seen.setdefault((pid, start), _cmdline(pid) or comm)
            self.sessions.add(sid)
            found.append((pid, comm))
            todo.extend(children.get(pid, []))
        return found

    def wait_for(self, match, what: str, timeout: float = 60.0) -> int:
        """The pid of the first live descendant for which match(comm, cmdline) holds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for pid, comm in self.scan():
                if match(comm, _cmdline(pid)):
                    return pid
            time.sleep(0.01)
        raise AssertionError(f"no {what} started under pid {self.root} within {timeout:g} s")

    def leftovers(self, grace: float = 5.0) -> list[str]:
        """Processes still alive from what the watched process started (same pid and start time, or in one
        of the sessions it or its children opened); waits `grace` seconds for them to go."""
        self._stop.set()
        self._thread.join(2)
        own_session = os.getsid(0)
        deadline = time.monotonic() + grace
        while True:
            alive = [f"{pid} {_cmdline(pid)[:120]}" for pid, (_ppid, sid, start, _comm) in _all_processes().items()
                     if (pid, start) in self.seen or (sid in self.sessions and sid != own_session)]
            if not alive or time.monotonic() > deadline:
                return alive
            time.sleep(0.05)


def is_qemu(comm: str, cmdline: str) -> bool:
    return "qemu-system-arm" in cmdline.split(" ", 1)[0]


def is_compiler(comm: str, cmdline: str) -> bool:
    return comm in ("cc1", "cc1plus")


def is_scons(comm: str, cmdline: str) -> bool:
    return "scons.py" in cmdline


# ---- the CLI as the user runs it ---------------------------------------------------------------------------------


class Cli:
    """`tinydeploy ARGS` in its own session and process group, as a shell runs a foreground job: a signal to
    the group is what Ctrl-C in a terminal sends. Its stderr is read line by line to follow the stages."""

    def __init__(self, *args, env: dict | None = None, preexec_fn=None):
        self.proc = subprocess.Popen([sys.executable, "-m", "tinydeploy", *map(str, args)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, start_new_session=True,
                                     env={**os.environ, **(env or {}), "COLUMNS": "160"}, preexec_fn=preexec_fn)
        self.watch = ProcessWatch(self.proc.pid)
        self.stderr_lines: list[str] = []
        self._stdout: list[str] = []
        self._new_line = threading.Condition()
        self._readers = [threading.Thread(target=self._read_stderr, daemon=True),
                         threading.Thread(target=lambda: self._stdout.append(self.proc.stdout.read()), daemon=True)]
        for reader in self._readers:
            reader.start()

    def _read_stderr(self) -> None:
        for line in self.proc.stderr:
            with self._new_line:
                self.stderr_lines.append(line.rstrip("\n"))
                self._new_line.notify_all()

    def wait_for_line(self, prefix: str, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        with self._new_line:
            while not any(line.startswith(prefix) for line in self.stderr_lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None and not self._readers[0].is_alive():
                    self.kill()
                    raise AssertionError(f"no line starting {prefix!r} on stderr:\n" + "\n".join(self.stderr_lines))
                self._new_line.wait(min(left, 0.2))

    def signal(self, number: int) -> None:
        os.killpg(self.proc.pid, number)

    def finish(self, timeout: float = 60.0) -> tuple[int, str, str]:
        code = self.proc.wait(timeout)
        for reader in self._readers:
            reader.join(5)
        return code, "".join(self._stdout), "\n".join(self.stderr_lines)

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


def assert_one_error_line(stderr: str, *fragments: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


# ---- projects ------------------------------------------------------------------------------------------------------


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every regular file under `folder` (PlatformIO's .pio/ aside) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and ".pio" not in p.relative_to(folder).parts}


def assert_no_debris(folder: Path) -> None:
    """No temporary file or staging directory of tinydeploy's anywhere under `folder`."""
    debris = [str(p) for p in folder.rglob("*") if p.name.endswith(".tmp") or ".tinydeploy-staging-" in p.name]
    assert not debris, debris


def assert_project_whole(directory: Path) -> None:
    """Either no project at all or a complete one: every file the manifest names, with its recorded digest."""
    assert_no_debris(directory.parent)
    if not directory.exists():
        return
    manifest = json.loads((directory / MANIFEST).read_text())
    assert "replacing" not in manifest
    for name, digest in manifest["files"].items():
        assert hashlib.sha256((directory / name).read_bytes()).hexdigest() == digest, name


def negated_ad_model(folder: Path) -> Path:
    """The AD autoencoder with one layer's weights negated: the same size, different generated sources."""
    def negate(model):
        op = model.subgraphs[0].operators[0]
        buffer = model.buffers[model.subgraphs[0].tensors[op.inputs[1]].buffer]
        buffer.data = (-(buffer.data.astype("int16")).clip(-127, 127)).astype("int8").view("uint8")
    path = folder / "ad_negated.tflite"
    path.write_bytes(edit_tflite(mlperf_model("ad").read_bytes(), negate))
    return path


@pytest.fixture(scope="session")
def kws_built(tmp_path_factory) -> Path:
    """KWS (DS-CNN) generated and built for the virtual board once: ~10^7 instructions per inference, so
    `--runs 10000` keeps a measurement going for long enough to break it."""
    from tinydeploy.boards import get_board
    from tinydeploy.build.platformio import build_project
    from tinydeploy.flow import generate_project
    from tinydeploy.model.tflite import load_tflite

    project = generate_project(load_tflite(mlperf_model("kws")), get_board("virtual"), "native",
                               tmp_path_factory.mktemp("faults") / "kws")
    build_project(project.directory, project.env_name)
    return project.directory


# ---- the board or QEMU vanishing mid-run ---------------------------------------------------------------------------


@pytest.mark.virtual
def test_qemu_killed_while_flash_measures_names_the_stopped_board_and_leaves_nothing(kws_built):
    cli = Cli("flash", mlperf_model("kws"), "--out", kws_built, "--runs", "10000", "--warmup", "0", "--samples", "1")
    try:
        cli.wait_for_line("tinydeploy: timing 10000 runs")
        qemu = cli.watch.wait_for(is_qemu, "QEMU")
        time.sleep(0.3)
        os.killpg(qemu, signal.SIGKILL)  # as an OOM killer or a user's `pkill qemu` would
        started = time.monotonic()
        code, stdout, stderr = cli.finish()
    finally:
        cli.kill()
    assert time.monotonic() - started < 10
    assert code == 1, stderr  # EXIT_FAILED: the board failed
    assert_one_error_line(stderr, "the virtual board stopped", "SIGKILL")
    assert not stdout.strip()
    assert not cli.watch.leftovers()
    assert_project_whole(kws_built)


@pytest.mark.virtual
def test_a_board_vanishing_under_monitor_is_one_line_naming_its_port(kws_built):
    from tinydeploy.runners.qemu import QemuBoard

    with QemuBoard(kws_built, "virtual") as board:
        cli = Cli("monitor", "--port", board.port_url, "--runs", "10000", "--warmup", "0")
        try:
            deadline = time.monotonic() + 30
            while not _connected(cli.proc.pid, board.port) and time.monotonic() < deadline:
                time.sleep(0.02)
            time.sleep(1.0)  # past the handshake, into the timed runs
            board.stop()
            started = time.monotonic()
            code, _, stderr = cli.finish()
        finally:
            cli.kill()
    assert time.monotonic() - started < 10
    assert code == 2, stderr
    assert_one_error_line(stderr, "lost the serial port", board.port_url)
    assert not cli.watch.leftovers()


def _connected(pid: int, port: int) -> bool:
    """Whether `pid` holds an established TCP connection to 127.0.0.1:port (from /proc/net/tcp)."""
    try:
        inodes = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        lines = Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for line in lines:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] == "01" and f"socket:[{fields[9]}]" in inodes:
            return True
    return False


# ---- PlatformIO failing mid-build ---------------------------------------------------------------------------------


def is_platformio(comm: str, cmdline: str) -> bool:
    return " -m platformio run " in cmdline


@pytest.mark.virtual
@pytest.mark.parametrize("victim, fragment", [
    (is_scons, "PlatformIO stopped building"),  # its build engine dies: PlatformIO itself only says [FAILED]
    (is_platformio, "PlatformIO was killed by SIGKILL"),
])
def test_platformio_killed_mid_build_is_one_line_and_leaves_no_compiler_running(tmp_path, victim, fragment):
    out = tmp_path / "ad"
    cli = Cli("flash", mlperf_model("ad"), "--out", out, "--runs", "1", "--samples", "1")
    try:
        cli.wait_for_line("tinydeploy: building")
        cli.watch.wait_for(is_compiler, "compiler")
        os.kill(cli.watch.wait_for(victim, victim.__name__), signal.SIGKILL)  # as the OOM killer would
        code, stdout, stderr = cli.finish()
    finally:
        cli.kill()
    assert code == 2, stderr
    assert_one_error_line(stderr, fragment, str(out), "run again", "log:")
    assert not stdout.strip()
    assert not cli.watch.leftovers(), "a compiler outlived the failed build"
    assert_project_whole(out)  # the generated project is complete; only .pio/ holds a partial build


@pytest.mark.virtual
def test_a_compiler_failing_mid_build_names_the_file(tmp_path):
    """A toolchain whose C compiler fails on the model's source (as on a full /tmp or an internal compiler
    error), in a PlatformIO core of the test's own: the user's core is not touched."""
    import shutil

    real_gcc = shutil.which("arm-none-eabi-gcc")
    if real_gcc is None:
        pytest.skip("arm-none-eabi-gcc is not installed")
    tools = tmp_path / "toolchain"
    tools.mkdir()
    for tool in Path(real_gcc).parent.glob("arm-none-eabi-*"):
        (tools / tool.name).symlink_to(tool)
    (tools / "arm-none-eabi-gcc").unlink()
    (tools / "arm-none-eabi-gcc").write_text(
        "#!/bin/sh\n"
        'case "$*" in *td_model_native.c*) echo "src/td_model_native.c:1:1: error: simulated compiler failure" >&2;'
        " exit 1;; esac\n"
        f'exec {real_gcc} "$@"\n')
    (tools / "arm-none-eabi-gcc").chmod(0o755)
    env = {"TINYDEPLOY_HOME": str(tmp_path / "home"), "PATH": f"{tools}:{os.environ['PATH']}"}
    out = tmp_path / "ad"
    result = run_cli("flash", mlperf_model("ad"), "--out", out, env=env, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert_one_error_line(result.stderr, "the firmware does not build", "td_model_native.c", "simulated compiler "
                          "failure", "full log:")
    assert_project_whole(out)


# ---- read-only and full disks ----------------------------------------------------------------------------------------


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True).returncode == 0


@contextlib.contextmanager
def read_only(folder: Path):
    """`folder` made read-only: chmod 0555 for a normal user; root ignores modes, so a read-only bind mount."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            yield "permission"
        finally:
            folder.chmod(0o755)
        return
    if not _mount("--bind", str(folder), str(folder)):
        pytest.skip("running as root without permission to mount: cannot make a directory read-only")
    try:
        if not _mount("-o", "remount,bind,ro", str(folder)):
            pytest.skip("cannot remount read-only here")
        yield "read-only"
    finally:
        subprocess.run(["umount", str(folder)], check=True)


@contextlib.contextmanager
def small_disk(folder: Path, size: str):
    """A tmpfs of `size` on `folder`: a real full disk (ENOSPC). Needs permission to mount."""
    folder.mkdir()
    if not _mount("-t", "tmpfs", "-o", f"size={size}", "tinydeploy-test", str(folder)):
        pytest.skip("no permission to mount a tmpfs (a full disk is covered by the file-size limit test)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_flash_into_a_read_only_directory_fails_before_building_and_writes_nothing(tmp_path):
    parent = tmp_path / "ro"
    parent.mkdir()
    with read_only(parent) as why:
        result = run_cli("flash", mlperf_model("ad"), "--out", parent / "proj")
    assert result.returncode == 2
    line = assert_one_error_line(result.stderr, str(parent / "proj"))
    assert why in line and "another output" in line
    assert not list(parent.iterdir())


def test_regenerating_a_read_only_project_keeps_it_byte_for_byte(tmp_path):
    out = tmp_path / "proj"
    assert run_cli("generate", mlperf_model("ad"), "--out", out).returncode == 0
    before = snapshot(out)
    with read_only(out) as why:
        result = run_cli("generate", negated_ad_model(tmp_path), "--out", out)
        assert snapshot(out) == before
    assert result.returncode == 2
    assert why in assert_one_error_line(result.stderr, str(out))
    assert_no_debris(out)
    assert_project_whole(out)


def _file_size_limit(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return apply


def test_a_file_size_limit_EFBIG_standing_in_for_a_full_disk_leaves_no_partial_project(tmp_path):
    """RLIMIT_FSIZE makes every write past 256 KiB fail with EFBIG, deterministically and without privileges;
    the model's C source (>1 MB) cannot be written, the small files before it can."""
    out = tmp_path / "nested" / "proj"
    cli = Cli("generate", mlperf_model("ad"), "--out", out, preexec_fn=_file_size_limit(256 * 1024))
    code, _, stderr = cli.finish()
    assert code == 2
    assert_one_error_line(stderr, "file-size limit", "ulimit")
    assert not (tmp_path / "nested").exists()  # not even the parent it had to create
    assert_no_debris(tmp_path)

    assert run_cli("generate", mlperf_model("kws"), "--out", out).returncode == 0
    before = snapshot(out)
    cli = Cli("generate", mlperf_model("ad"), "--out", out, preexec_fn=_file_size_limit(256 * 1024))
    code, _, stderr = cli.finish()
    assert code == 2 and "file-size limit" in assert_one_error_line(stderr)
    assert snapshot(out) == before
    assert_project_whole(out)


def test_a_full_disk_ENOSPC_on_a_tmpfs_keeps_the_previous_project_whole(tmp_path):
    with small_disk(tmp_path / "disk", "2m") as disk:
        out = disk / "proj"
        first = run_cli("generate", mlperf_model("ad"), "--out", out)
        assert first.returncode == 0, first.stderr
        before = snapshot(out)
        # the new sources (as large) are staged beside the old ones before anything is replaced: no room
        result = run_cli("generate", negated_ad_model(tmp_path), "--out", out)
        assert result.returncode == 2
        assert_one_error_line(result.stderr, "no space left on the disk", str(out), "free some space")
        assert snapshot(out) == before
        assert_project_whole(out)

        fresh = run_cli("generate", mlperf_model("ad"), "--out", disk / "second")
        assert fresh.returncode == 2 and "no space left" in assert_one_error_line(fresh.stderr)
        assert not (disk / "second").exists()
        assert_no_debris(disk)


# ---- Ctrl-C (and SIGTERM) at each stage ----------------------------------------------------------------------------


def _loaded_tensorflow(pid: int) -> bool:
    try:
        return "tensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


@pytest.mark.slow
def test_ctrl_c_while_converting_exits_130_and_writes_nothing(sine_model_files, tmp_path):
    out = tmp_path / "sine"
    cli = Cli("flash", sine_model_files.keras, "--calib", sine_model_files.calib, "--out", out)
    try:
        cli.wait_for_line("tinydeploy: converting")
        deadline = time.monotonic() + 60
        while not _loaded_tensorflow(cli.proc.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _loaded_tensorflow(cli.proc.pid), "TensorFlow was never loaded"
        cli.signal(signal.SIGINT)
        code, stdout, stderr = cli.finish()
    finally:
        cli.kill()
    assert code == 130, stderr[-2000:]
    assert assert_one_error_line(stderr) == "error: interrupted"
    assert not out.exists() and not stdout.strip()
    assert_no_debris(tmp_path)
    assert not cli.watch.leftovers()


@pytest.mark.virtual
def test_ctrl_c_while_building_stops_platformio_and_its_compilers(tmp_path):
    out = tmp_path / "ad"
    cli = Cli("flash", mlperf_model("ad"), "--out", out)
    try:
        cli.wait_for_line("tinydeploy: building")
        cli.watch.wait_for(is_compiler, "compiler")
        cli.signal(signal.SIGINT)
        code, _, stderr = cli.finish()
    finally:
        cli.kill()
    assert code == 130, stderr[-2000:]
    assert assert_one_error_line(stderr) == "error: interrupted"
    assert any("platformio" in command for command in cli.watch.seen.values())
    assert not cli.watch.leftovers(), "PlatformIO or a compiler outlived the interrupted build"
    assert_project_whole(out)


@pytest.mark.virtual
@pytest.mark.parametrize("number, code, message", [
    (signal.SIGINT, 130, "error: interrupted"),
    (signal.SIGTERM, 143, "error: stopped by SIGTERM"),
])
def test_a_signal_while_qemu_measures_stops_qemu(kws_built, number, code, message):
    cli = Cli("flash", mlperf_model("kws"), "--out", kws_built, "--runs", "10000", "--warmup", "0", "--samples", "1")
    try:
        cli.wait_for_line("tinydeploy: timing 10000 runs")
        cli.watch.wait_for(is_qemu, "QEMU")
        cli.signal(number)
        got, stdout, stderr = cli.finish()
    finally:
        cli.kill()
    assert got == code, stderr[-2000:]
    assert assert_one_error_line(stderr) == message
    assert not stdout.strip()
    assert any("qemu-system-arm" in command for command in cli.watch.seen.values())
    assert not cli.watch.leftovers(), "QEMU outlived the interrupted run"
    assert_project_whole(kws_built)


def test_ctrl_c_during_generation_leaves_no_project(tmp_path):
    """Generation interrupted as soon as its staging directory appears (a window of milliseconds: a few
    tries; skipped if every one of them finished first)."""
    for attempt in range(5):
        folder = tmp_path / str(attempt)
        folder.mkdir()
        out = folder / "ad"
        cli = Cli("generate", mlperf_model("ad"), "--out", out)
        try:
            deadline = time.monotonic() + 60
            while cli.proc.poll() is None and time.monotonic() < deadline:
                if any(".tinydeploy-staging-" in entry.name for entry in os.scandir(folder)):
                    cli.signal(signal.SIGINT)
                    break
            code, _, stderr = cli.finish()
        finally:
            cli.kill()
        if code != 0:
            break
    else:
        pytest.skip("every generation finished before the interrupt landed")
    assert code == 130, (code, stderr)
    assert assert_one_error_line(stderr) == "error: interrupted"
    assert not out.exists()
    assert_no_debris(folder)


# ---- the user's files ---------------------------------------------------------------------------------------------


def test_flash_refuses_a_directory_of_the_users_without_force_and_touches_nothing(tmp_path):
    mine = tmp_path / "mine"
    (mine / "src").mkdir(parents=True)
    (mine / "src" / "main.cpp").write_text("// my own sketch\nint main() { return 0; }\n")
    (mine / "notes.txt").write_bytes(b"\x00binary notes\xff")
    before = snapshot(mine)
    result = run_cli("flash", mlperf_model("ad"), "--out", mine)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, str(mine), "not written by tinydeploy", "--force")
    assert snapshot(mine) == before and not (mine / ".pio").exists()

    forced = run_cli("generate", mlperf_model("ad"), "--out", mine, "--force")
    assert forced.returncode == 0, forced.stderr
    assert (mine / "notes.txt").read_bytes() == before["notes.txt"]  # --force replaces its files, deletes nothing
    assert (mine / "src" / "main.cpp").read_bytes() != before["src/main.cpp"]
    assert_project_whole(mine)


def test_an_edited_generated_file_is_kept_byte_for_byte_until_force(tmp_path):
    out = tmp_path / "proj"
    assert run_cli("generate", mlperf_model("ad"), "--out", out).returncode == 0
    sketch = out / "src" / "main.cpp"
    sketch.write_bytes(sketch.read_bytes() + b"\n// tuned by hand\n")
    (out / "src" / "extra.cpp").write_text("// mine\n")
    before = snapshot(out)
    for command in ("generate", "flash"):
        result = run_cli(command, negated_ad_model(tmp_path), "--out", out)
        assert result.returncode == 2
        assert_one_error_line(result.stderr, "main.cpp", "changed since tinydeploy generated it", "--force")
        assert snapshot(out) == before
    assert run_cli("generate", negated_ad_model(tmp_path), "--out", out, "--force").returncode == 0
    assert b"tuned by hand" not in sketch.read_bytes()
    assert (out / "src" / "extra.cpp").read_text() == "// mine\n"
    assert_project_whole(out)


def test_a_project_caught_mid_swap_by_kill_9_regenerates_without_force(tmp_path):
    """The state a kill -9 leaves between two renames (crafted here, since no signal can be aimed at that
    window): the manifest names the new digests and the ones being replaced, the files are still the old
    ones, and a dead process's staging directory lies in the project. Regeneration takes it all as its own."""
    out = tmp_path / "proj"
    assert run_cli("generate", mlperf_model("ad"), "--out", out).returncode == 0
    old = json.loads((out / MANIFEST).read_text())
    other = tmp_path / "other"
    assert run_cli("generate", negated_ad_model(tmp_path), "--out", other).returncode == 0
    journal = json.loads((other / MANIFEST).read_text())
    journal["replacing"] = {name: digest for name, digest in old["files"].items()
                            if journal["files"].get(name) != digest}
    assert journal["replacing"]  # the model's sources differ
    (out / MANIFEST).write_text(json.dumps(journal))
    dead = out / ".tinydeploy-staging-999999999-abc"
    dead.mkdir()
    (dead / "0").write_text("half")
    result = run_cli("generate", negated_ad_model(tmp_path), "--out", out)
    assert result.returncode == 0, result.stderr
    assert snapshot(out) == snapshot(other)
    assert_project_whole(out)
