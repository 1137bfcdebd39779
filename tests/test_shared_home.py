"""tinydeploy's home ($TINYDEPLOY_HOME, its PlatformIO directory) under concurrent use and damage: two installs
building at once, what tinydeploy put there damaged in every way we know, and a home that cannot be used at all.
Damage is repaired or named in one line; two installs never break each other's builds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, run_cli
from tests.corpus.make_corpus import tiny_model_bytes


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """x[1,4] -> FULLY_CONNECTED -> y[1,2]: the smallest model every engine runs (builds in seconds)."""
    path = tmp_path_factory.mktemp("model") / "tiny.tflite"
    path.write_bytes(tiny_model_bytes())
    return path


def assert_one_error_line(result: subprocess.CompletedProcess, *fragments: str) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("tinydeploy:")]
    assert result.returncode == 2, (result.returncode, result.stderr[-1500:])
    assert len(lines) == 1 and lines[0].startswith("error: ") and "internal error" not in lines[0], result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


# ---- damage to what tinydeploy provided is repaired -----------------------------------------------------------


def _damage(core: Path, what: str) -> None:
    scons, gcc = core / "packages" / "tool-scons", core / "packages" / "toolchain-gccarmnoneeabi"
    if what == "scons .piopm is not JSON":
        (scons / ".piopm").write_text("{broken")
    elif what == "scons.py is empty":
        (scons / "scons.py").write_text("")
    elif what == "scons package.json names another version":
        (scons / "package.json").write_text(json.dumps({"name": "tool-scons", "version": "4.40000.0"}))
    elif what == "the SCons link leads nowhere":
        (scons / "SCons").unlink()
        (scons / "SCons").symlink_to(core / "nowhere")
    elif what == "the tool-scons folder is a file":
        shutil.rmtree(scons)
        scons.write_text("x")
    elif what == "toolchain .piopm is empty":
        (gcc / ".piopm").write_text("")
    elif what == "a toolchain link leads nowhere":
        (gcc / "bin" / "arm-none-eabi-gcc").unlink()
        (gcc / "bin" / "arm-none-eabi-gcc").symlink_to(core / "nowhere")
    elif what == "appstate.json is not JSON":
        (core / "appstate.json").write_text("[1")
    else:
        raise AssertionError(what)


DAMAGES = ["scons .piopm is not JSON", "scons.py is empty", "scons package.json names another version",
           "the SCons link leads nowhere", "the tool-scons folder is a file", "toolchain .piopm is empty",
           "a toolchain link leads nowhere", "appstate.json is not JSON"]


@pytest.mark.parametrize("what", DAMAGES)
def test_damage_to_what_tinydeploy_provided_is_repaired_on_next_use(tmp_path, what):
    from tinydeploy.build import platformio

    if "toolchain" in what and shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("no arm-none-eabi-gcc: no toolchain package is provisioned")
    core = platformio.provision_core_dir(tmp_path / "core")
    pristine = {p.relative_to(core): (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p)
                                      if p.is_symlink() else None) for p in core.rglob("*")
                if ".cache" not in p.parts and p.name != ".tinydeploy-provision.lock"}
    _damage(core, what)
    platformio.provision_core_dir(core)
    repaired = {p.relative_to(core): (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p)
                                      if p.is_symlink() else None) for p in core.rglob("*")
                if ".cache" not in p.parts and p.name != ".tinydeploy-provision.lock"}
    if what == "appstate.json is not JSON":
        assert json.loads((core / "appstate.json").read_text())["last_version"]
        del pristine[Path("appstate.json")], repaired[Path("appstate.json")]
    assert repaired == pristine
    assert not [p for p in (core / "packages").iterdir() if p.name.startswith(".")], "staging left behind"


def test_a_damaged_link_to_the_virtual_platform_is_rewritten(tmp_path):
    from tinydeploy.build.platformio import _ensure_platform_link, virtual_platform_spec

    core = tmp_path / "core"
    spec = virtual_platform_spec()
    _ensure_platform_link(core, spec, tmp_path)
    (link,) = (core / "platforms").glob("tinydeploy-virtual-*.pio-link")
    good = link.read_bytes()
    for damage in (b"{broken", b"", json.dumps({"spec": {"name": link.stem, "uri": "symlink:///elsewhere"}}).encode()):
        link.write_bytes(damage)
        _ensure_platform_link(core, spec, tmp_path)
        assert link.read_bytes() == good


def test_a_damaged_record_of_a_downloaded_package_is_named_with_the_fix(tmp_path):
    from tinydeploy.build.platformio import provision_core_dir
    from tinydeploy.errors import TinydeployError

    core = provision_core_dir(tmp_path / "core")
    framework = core / "packages" / "framework-arduino-mbed"
    framework.mkdir()
    (framework / ".piopm").write_text("{cut short")
    with pytest.raises(TinydeployError) as raised:
        provision_core_dir(core)
    line = raised.value.one_line()
    assert str(framework / ".piopm") in line and f"delete {framework}" in line and "tinydeploy setup" in line


@pytest.mark.virtual
def test_a_build_after_every_damage_at_once_succeeds(tmp_path, tiny_model):
    """The real proof: PlatformIO builds and QEMU runs the model in a home damaged everywhere tinydeploy wrote."""
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("no arm-none-eabi-gcc")
    home = tmp_path / "home"
    env = {"TINYDEPLOY_HOME": str(home)}
    first = run_cli("flash", tiny_model, "--out", tmp_path / "p", "--runs", "1", "--samples", "1", env=env)
    assert first.returncode == 0, first.stderr[-2000:]
    core = home / "platformio"
    for what in DAMAGES:
        if what != "the tool-scons folder is a file":
            _damage(core, what)
    for link in (core / "platforms").glob("*.pio-link"):
        link.write_text("{broken")
    again = run_cli("flash", tiny_model, "--out", tmp_path / "q", "--runs", "1", "--samples", "1", env=env)
    assert again.returncode == 0, again.stderr[-2000:]


# ---- a home that cannot be used is one line, exit 2 --------------------------------------------------------------


def test_a_home_that_is_a_file_is_one_line(tmp_path, tiny_model):
    home = tmp_path / "home"
    home.write_text("not a folder")
    result = run_cli("flash", tiny_model, "--out", tmp_path / "p", env={"TINYDEPLOY_HOME": str(home)})
    assert_one_error_line(result, str(home), "is a file", "TINYDEPLOY_HOME")


def test_a_lock_file_that_is_a_directory_is_one_line(tmp_path, tiny_model):
    home = tmp_path / "home"
    (home / "platformio" / ".tinydeploy-provision.lock").mkdir(parents=True)
    result = run_cli("flash", tiny_model, "--out", tmp_path / "p", env={"TINYDEPLOY_HOME": str(home)})
    assert_one_error_line(result, "lock file", "is a directory", "rmdir")


def test_a_full_disk_while_provisioning_a_fresh_home_is_one_line_and_leaves_no_half_package(tmp_path, tiny_model):
    disk = tmp_path / "disk"
    disk.mkdir()
    # a tmpfs with room for a handful of files: a real ENOSPC partway through provisioning
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k,nr_inodes=12", "tinydeploy-test", str(disk)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("no permission to mount a tmpfs")
    try:
        result = run_cli("flash", tiny_model, "--out", tmp_path / "p", env={"TINYDEPLOY_HOME": str(disk / "home")})
        assert_one_error_line(result, "no space left on the disk", "TINYDEPLOY_HOME")
        packages = disk / "home" / "platformio" / "packages"
        leftovers = [p.name for p in packages.iterdir()] if packages.is_dir() else []
        assert not [name for name in leftovers if name.startswith(".")], leftovers
    finally:
        subprocess.run(["umount", str(disk)], check=True)


# ---- two installs sharing one home -----------------------------------------------------------------------------


def _install_copy(root: Path) -> Path:
    """A second copy of tinydeploy (package, firmware, templates), as another checkout or install has."""
    for name in ("tinydeploy", "firmware", "templates"):
        shutil.copytree(REPO / name, root / name, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.virtual
def test_two_installs_flashing_at_once_into_one_fresh_home_both_succeed(tmp_path, tiny_model):
    """Each install's virtual platform is linked under its own name, and PlatformIO's link is written before it
    looks, atomically: neither run re-points the other's platform (before: UnknownPlatform, 12 times of 12)."""
    installs = [_install_copy(tmp_path / name) for name in ("a", "b")]
    home = tmp_path / "home"
    for attempt in range(2):  # a fresh home, then one both have used
        procs = []
        for index, install in enumerate(installs):
            env = {**os.environ, "PYTHONPATH": str(install), "TINYDEPLOY_HOME": str(home), "COLUMNS": "160"}
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "tinydeploy", "flash", str(tiny_model), "--out",
                 str(tmp_path / f"out-{attempt}-{index}"), "--runs", "1", "--samples", "1", "--json"],
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=install))
        results = [proc.communicate(timeout=600) for proc in procs]
        for proc, (stdout, stderr), install in zip(procs, results, installs):
            assert proc.returncode == 0, f"attempt {attempt}, {install.name}: {stderr[-2000:]}"
            assert json.loads(stdout)["outputs_match"]
    links = sorted(p.name for p in (home / "platformio" / "platforms").glob("*.pio-link"))
    assert len(links) == 2, links  # one per install


@pytest.mark.virtual
def test_a_broken_copy_of_the_platform_elsewhere_does_not_break_this_install(tmp_path, tiny_model):
    """PlatformIO reads the manifest of every platform linked in its directory: a damaged copy of another
    checkout's platform.json used to fail every build of every install sharing the home."""
    home = tmp_path / "home"
    other = tmp_path / "other-checkout" / "platform"
    shutil.copytree(REPO / "firmware" / "platform", other)
    links = home / "platformio" / "platforms"
    links.mkdir(parents=True)
    spec = {"owner": None, "id": None, "name": "other-checkout", "requirements": None, "uri": f"symlink://{other}"}
    (links / "other-checkout.pio-link").write_text(json.dumps({"cwd": str(tmp_path), "spec": spec}))  # as PlatformIO
    (other / "platform.json").write_text('{"name": ')
    result = run_cli("flash", tiny_model, "--out", tmp_path / "p", "--runs", "1", "--samples", "1",
                     env={"TINYDEPLOY_HOME": str(home)})
    assert result.returncode == 0, result.stderr[-2000:]
