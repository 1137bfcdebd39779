"""PlatformIO runs through one function (build, upload, setup): it names the real cause of a failure from
PlatformIO's output and exit status ("out of memory?" only for a kill by SIGKILL), and it ends a run that makes
no progress - no output, no CPU time, no I/O - saying which stage stalled. Real PlatformIO runs throughout."""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.corpus.make_corpus import tiny_model_bytes
from tests.test_faults import Cli, assert_one_error_line, is_compiler
from tinydeploy.errors import TinydeployError

pytestmark = pytest.mark.virtual


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory) -> Path:
    """The generated project of the smallest model (builds in seconds), never built: each test copies it."""
    from tinydeploy.boards import get_board
    from tinydeploy.flow import generate_project
    from tinydeploy.model.tflite import parse_tflite

    root = tmp_path_factory.mktemp("pio-runs")
    model = parse_tflite(tiny_model_bytes(), root / "tiny.tflite")
    return generate_project(model, get_board("virtual"), "native", root / "tiny").directory


def variant(tiny_project: Path, tmp_path: Path, ini=None) -> Path:
    project = tmp_path / "project"
    shutil.copytree(tiny_project, project, ignore=shutil.ignore_patterns(".pio"))
    if ini is not None:
        path = project / "platformio.ini"
        path.write_text(ini(path.read_text()))
    return project


def build_error(project: Path, env: dict[str, str] | None = None) -> str:
    from tinydeploy.build.platformio import build_project

    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        with pytest.raises(TinydeployError) as raised:
            build_project(project, "virtual")
    finally:
        os.environ.clear()
        os.environ.update(saved)
    line = raised.value.one_line()
    assert "out of memory" not in line and "killed" not in line, line
    assert "log:" in line, line
    return line


def test_a_missing_program_is_named_not_guessed(tiny_project, tmp_path):
    """The build runs its compilers through `sh`; PlatformIO prints `*** [...] sh: No such file or directory`."""
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ["python3", *(p.name for p in Path(shutil.which("arm-none-eabi-gcc") or "/").parent.glob(
            "arm-none-eabi-*"))]:
        found = shutil.which(tool) or sys.executable
        (tools / tool).symlink_to(found)
    line = build_error(variant(tiny_project, tmp_path), {"PATH": str(tools)})
    assert "the program `sh` that the build runs is missing" in line


def with_platform(spec: str):
    return lambda text: "\n".join(f"platform = {spec}" if row.startswith("platform = ") else row
                                  for row in text.splitlines())


def test_a_platform_folder_that_is_gone_is_named(tiny_project, tmp_path):
    line = build_error(variant(tiny_project, tmp_path, with_platform(f"symlink://{tmp_path / 'gone'}")),
                       {"TINYDEPLOY_HOME": str(tmp_path / "home")})
    assert "PlatformIO does not find what the project names" in line


def test_a_damaged_platform_manifest_is_named(tiny_project, tmp_path):
    from tinydeploy.paths import firmware_dir

    platform = tmp_path / "platform"
    shutil.copytree(firmware_dir() / "platform", platform)
    (platform / "platform.json").write_text('{"name": "tinydeploy-virtual", ')
    line = build_error(variant(tiny_project, tmp_path, with_platform(f"symlink://{platform}")),
                       {"TINYDEPLOY_HOME": str(tmp_path / "home")})
    assert "manifest" in line or "cannot read" in line


def test_a_board_platformio_does_not_know_is_named(tiny_project, tmp_path):
    line = build_error(variant(tiny_project, tmp_path, lambda text: text.replace("board = virtual",
                                                                              "board = no_such_board")))
    assert "no_such_board" in line


def test_a_stopped_compiler_is_a_stall_named_and_ended(tiny_project, tmp_path):
    """A compiler stopped mid-build (SIGSTOP, as a debugger or a frozen NFS mount would hold it) used to keep
    flash waiting for ever with no message. Now: the stage, the stopped process, and nothing left running."""
    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_model_bytes())
    out = variant(tiny_project, tmp_path)
    cli = Cli("flash", model, "--out", out, "--force", "--runs", "1", "--samples", "1",
              env={"TINYDEPLOY_STALL_SECONDS": "3"})
    try:
        stopped = None
        deadline = time.monotonic() + 120
        while stopped is None and time.monotonic() < deadline:
            pid = cli.watch.wait_for(is_compiler, "a compiler")
            try:
                os.kill(pid, signal.SIGSTOP)
                stopped = pid
            except ProcessLookupError:
                continue  # it finished first: the next one
        assert stopped is not None
        started = time.monotonic()
        code, _, stderr = cli.finish(timeout=60)
        ended_after = time.monotonic() - started
    finally:
        cli.kill()
    assert code == 2, stderr
    line = assert_one_error_line(stderr, "made no progress for 3 s", f"(pid {stopped}) is stopped", "at: ",
                                 "TINYDEPLOY_STALL_SECONDS", "log:")
    assert "out of memory" not in line and " compiling " in line  # the file the stopped compiler works on
    assert ended_after < 30
    assert not cli.watch.leftovers(), "the stopped compiler or its build outlived the stall"
