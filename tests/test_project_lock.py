"""Two tinydeploys writing one project directory (--out): the second is told that another tinydeploy is using it,
at once, and touches nothing; the first builds and runs its own model. Real CLI processes throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.corpus.make_corpus import edited, tiny_model_bytes
from tests.test_faults import Cli, assert_project_whole, snapshot

BUSY = "is using the project directory"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path]:
    """Two small models with different weights (different generated sources)."""
    root = tmp_path_factory.mktemp("models")
    first, second = root / "first.tflite", root / "second.tflite"
    first.write_bytes(tiny_model_bytes())

    def other_weights(model):
        model.buffers[1].data = [(b + 3) % 256 for b in model.buffers[1].data]
    second.write_bytes(edited(other_weights))
    return first, second


def assert_busy(result: subprocess.CompletedProcess, out: Path) -> None:
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(errors) == 1, result.stderr[-1500:]
    assert "another tinydeploy (pid" in errors[0] and BUSY in errors[0] and str(out) in errors[0], errors[0]
    assert "choose another --out" in errors[0]


def test_a_directory_held_by_another_tinydeploy_is_refused_at_once_and_untouched(models, tmp_path):
    first, second = models
    out = tmp_path / "proj"
    assert run_cli("generate", first, "--out", out).returncode == 0
    before = snapshot(out)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom tinydeploy.locking import project_lock\n"
         "with project_lock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        started = time.monotonic()
        for command in ("generate", "flash"):
            assert_busy(run_cli(command, second, "--out", out, "--force"), out)
        assert time.monotonic() - started < 30  # refused at once, not after waiting
    finally:
        holder.kill()
        holder.wait()
    assert snapshot(out) == before


@pytest.mark.virtual
def test_a_second_run_while_the_first_builds_is_refused_and_the_first_runs_its_own_model(models, tmp_path):
    """Before: the second regenerated the directory under the first's build, which then put the second's model
    on its board ("the device runs another model") or failed with a misleading "directory not empty"."""
    first, second = models
    out = tmp_path / "proj"
    cli = Cli("flash", first, "--out", out, "--runs", "1", "--samples", "2", "--json")
    try:
        cli.wait_for_line("tinydeploy: building")
        intruder = run_cli("generate", second, "--out", out, "--force")
        code, stdout, stderr = cli.finish(timeout=300)
    finally:
        cli.kill()
    assert_busy(intruder, out)
    assert code == 0, stderr[-2000:]
    report = json.loads(stdout)
    assert report["outputs_match"] and report["model"] == "first"
    assert json.loads((out / ".tinydeploy.json").read_text())["model"] == "first"
    assert_project_whole(out)


def test_runs_racing_into_a_new_directory_succeed_or_say_another_tinydeploy_uses_it(models, tmp_path):
    """Two generates started together into a directory that does not exist yet, several times: each either
    writes a whole project or is told the directory is in use; never "Directory not empty" or a half project."""
    first, second = models
    for attempt in range(4):
        out = tmp_path / f"proj{attempt}"
        with ThreadPoolExecutor(max_workers=2) as pool:
            runs = [pool.submit(run_cli, "generate", model, "--out", out, "--force") for model in (first, second)]
            results = [run.result() for run in runs]
        for result in results:
            if result.returncode != 0:
                assert_busy(result, out)
        assert any(result.returncode == 0 for result in results)
        assert_project_whole(out)
