"""Hostile inputs never crash tinydeploy: every corpus case through the real CLI commands users run.

Each refused case must give exit code 2, exactly one `error:` line naming the problem, no traceback, and
finish within a timeout. Valid models with hostile names must generate projects that hold those names only
escaped (tinydeploy/emit/cstrings.py), which a host C compiler proves.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import run_cli
from tests.corpus.make_corpus import (CASES, CASES_DIR, FOUND_DIR, HOSTILE_NAMES, HOSTILE_TEXT, all_cases,
                                      keras_cases, tiny_model_bytes)

COMMAND_TIMEOUT = 60  # seconds; a hang fails the test instead of the CI job


def _commands(path: Path, out: Path) -> dict[str, list[str]]:
    return {
        "analyze": ["analyze", path],
        "convert": ["convert", path, "-o", out / "converted.tflite"],
        "generate-native": ["generate", path, "--board", "virtual", "--engine", "native", "-o", out / "native"],
        "generate-tflm": ["generate", path, "--board", "virtual", "--engine", "tflm", "-o", out / "tflm"],
        "flash": ["flash", path, "--board", "virtual", "--engine", "native", "-o", out / "flash"],
    }


def _run_all(jobs: dict[tuple[str, str], list]) -> dict[tuple[str, str], subprocess.CompletedProcess]:
    """Runs the CLI for every (case, command) pair, a few at a time (each is a short-lived process)."""
    with ThreadPoolExecutor(max_workers=max(2, min(6, (os.cpu_count() or 2) + 1))) as pool:
        futures = {key: pool.submit(run_cli, *args, timeout=COMMAND_TIMEOUT) for key, args in jobs.items()}
        return {key: future.result() for key, future in futures.items()}


def assert_one_line_error(result: subprocess.CompletedProcess, fragment: str = "") -> str:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == 2, (result.returncode, result.stdout[-500:], result.stderr[-500:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    # progress lines (flash on a pipe) may come first; the error is one line, and the last
    assert len(errors) == 1 and lines[-1] == errors[0] and errors[0].startswith("error: "), result.stderr
    assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


TFLITE_CASES = {case.name: case for case in CASES}
# generate (both engines) and flash load a .tflite through one function, so a defect the reader refuses
# needs only one of them; models the reader accepts go through all three.
LOADS_ALIKE = ("generate-native", "generate-tflm", "flash")


def _commands_to_skip(path: Path, accepted: tuple[str, ...], counter: int) -> set[str]:
    if accepted or path.parent == FOUND_DIR:
        return {"flash"}  # flash would build firmware; refusal is what these tests are about
    case = TFLITE_CASES.get(path.name)
    if case is not None and case.refused_by_reader:
        keep = LOADS_ALIKE[counter % len(LOADS_ALIKE)]
        return set(LOADS_ALIKE) - {keep}
    return set()
KERAS_FAST = {"garbage.keras": "not a Keras zip archive", "no_config.keras": "without config.json",
              "garbage.h5": "not an HDF5 file"}


@pytest.fixture(scope="module")
def corpus_runs(tmp_path_factory):
    """Every committed case (and every fuzz find) through every command, once for the module."""
    work = tmp_path_factory.mktemp("corpus")
    files = sorted(CASES_DIR.glob("*")) + sorted(FOUND_DIR.glob("*.tflite"))
    jobs = {}
    for path in files:
        if path.name not in TFLITE_CASES and path.name not in KERAS_FAST and path.parent != FOUND_DIR:
            continue  # the hostile-name model and the TensorFlow-loading cases have their own tests
        accepted = TFLITE_CASES[path.name].accepted_by if path.name in TFLITE_CASES else ()
        (work / path.name).mkdir()
        for command, args in _commands(path, work / path.name).items():
            if command in _commands_to_skip(path, accepted, len(jobs)):
                continue
            jobs[(f"{path.parent.name}/{path.name}", command)] = args
    return _run_all(jobs)


def test_the_committed_corpus_matches_its_generator():
    stale = [name for name, data in all_cases().items()
             if not (CASES_DIR / name).is_file() or (CASES_DIR / name).read_bytes() != data]
    assert not stale, f"run python tests/corpus/make_corpus.py: {stale}"
    assert all(len(data) <= 4096 for data in all_cases().values())


@pytest.mark.parametrize("name", sorted(TFLITE_CASES))
def test_every_command_refuses_a_bad_model_in_one_line(corpus_runs, name):
    case = TFLITE_CASES[name]
    runs = {command: result for (file, command), result in corpus_runs.items() if file == f"cases/{name}"}
    assert runs, name
    for command, result in runs.items():
        if command in case.accepted_by:
            assert result.returncode in (0, 1), (command, result.stderr[-800:])
            assert "Traceback" not in result.stderr and "internal error" not in result.stderr
        else:
            assert_one_line_error(result, case.expect)


@pytest.mark.parametrize("name", sorted(KERAS_FAST))
def test_files_that_are_not_keras_models_are_refused_before_tensorflow(corpus_runs, name):
    runs = {command: result for (file, command), result in corpus_runs.items() if file == f"cases/{name}"}
    assert_one_line_error(runs["analyze"], "tinydeploy convert")
    for command in ("convert", "generate-native", "generate-tflm", "flash"):
        assert_one_line_error(runs[command], KERAS_FAST[name])


def test_inputs_found_by_fuzzing_stay_refused(corpus_runs):
    found = {file: result for (file, command), result in corpus_runs.items() if file.startswith("found/")}
    for file, result in found.items():
        assert result.returncode in (0, 1, 2) and "Traceback" not in result.stderr, (file, result.stderr)
        if result.returncode == 2:
            assert_one_line_error(result)


def test_special_files_and_sizes_are_refused(tmp_path):
    """Reading /dev/zero as a model would never end; a directory named .tflite is no model either."""
    (tmp_path / "dir.tflite").mkdir()
    jobs = {("zero", "analyze"): ["analyze", "/dev/zero"],
            ("zero", "generate"): ["generate", "/dev/zero", "-e", "native", "-o", tmp_path / "g"],
            ("dir", "analyze"): ["analyze", tmp_path / "dir.tflite"]}
    runs = _run_all(jobs)
    assert_one_line_error(runs[("zero", "analyze")], "not a regular file")
    assert_one_line_error(runs[("zero", "generate")])
    assert_one_line_error(runs[("dir", "analyze")], "directory")


def test_a_fifo_as_the_model_is_refused_before_anything_opens_it(tmp_path):
    """Opening a FIFO blocks until a writer comes: every command that takes a model must refuse it unopened
    (the check is shared; before it, generate, flash and convert waited for ever)."""
    fifos = {suffix: tmp_path / f"model{suffix}" for suffix in (".tflite", ".keras")}
    for fifo in fifos.values():
        os.mkfifo(fifo)
    jobs = {}
    for suffix, fifo in fifos.items():
        jobs.update({(suffix, "analyze"): ["analyze", fifo],
                     (suffix, "generate"): ["generate", fifo, "-e", "native", "-o", tmp_path / f"g{suffix}"],
                     (suffix, "flash"): ["flash", fifo, "-o", tmp_path / f"f{suffix}"],
                     (suffix, "convert"): ["convert", fifo, "-o", tmp_path / f"c{suffix}.tflite", "--calib", "random"]})
    results, hung = {}, []
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {key: pool.submit(run_cli, *args, timeout=30) for key, args in jobs.items()}
        for key, future in futures.items():
            try:
                results[key] = future.result()
            except subprocess.TimeoutExpired:
                hung.append(key)
    assert not hung, f"still waiting on the FIFO after 30 s: {hung}"
    for result in results.values():
        assert_one_line_error(result, "FIFO")
    assert not any(tmp_path.glob("[gfc].*"))


# ------------------------------------------------------------------------------------------- hostile names


HOSTILE_FILE_STEM = 'm"o\\d*e?l ??= \u00e9\u4e2d #x'  # any byte but '/' and NUL may name a file


def _generated_sources(project: Path) -> dict[Path, bytes]:
    return {path: path.read_bytes() for path in project.rglob("*")
            if path.is_file() and path.suffix in (".c", ".h", ".cpp", ".ini")}


def test_hostile_names_reach_generated_projects_only_escaped(tmp_path):
    model = tmp_path / f"{HOSTILE_FILE_STEM}.tflite"
    model.write_bytes((CASES_DIR / HOSTILE_NAMES.name).read_bytes())
    jobs = {("names", engine): ["generate", model, "--board", "virtual", "--engine", engine, "-o", tmp_path / engine]
            for engine in ("native", "tflm")}
    jobs[("names", "analyze")] = ["analyze", model, "--json"]
    jobs[("names", "convert")] = ["convert", model, "-o", tmp_path / "copy.tflite"]
    runs = _run_all(jobs)
    for key, result in runs.items():
        assert result.returncode == 0 and "Traceback" not in result.stderr, (key, result.stderr)

    # quotes are harmless inside comments; comment ends, trigraphs, line breaks and raw bytes are not
    raw_fragments = [HOSTILE_TEXT, "*/ /*", "??/", "??=", "out*/x", HOSTILE_FILE_STEM, "\u00e9", "\u4e2d"]
    for engine in ("native", "tflm"):
        sources = _generated_sources(tmp_path / engine)
        assert sources
        for path, content in sources.items():
            assert content.isascii(), f"{path} holds non-ASCII bytes (unescaped user text)"
            text = content.decode()
            if path.suffix == ".ini":  # a comment line there: only a line break or non-ASCII would harm
                assert all(not line.startswith(("#include", "x (sha")) for line in text.splitlines())
                continue
            for fragment in raw_fragments:
                assert fragment not in text, (path, fragment)
            assert not any(line.lstrip().startswith(("#include <x>", "#x")) for line in text.splitlines()), path
        info = tmp_path / engine / "src" / "td_model_info.h"
        _assert_c_prints_the_exact_name(info, HOSTILE_FILE_STEM, tmp_path / f"probe_{engine}")
    native_model = (tmp_path / "native" / "src" / "td_model_native.c")
    _assert_compiles(native_model, tmp_path / "native")


def _host_cc() -> str:
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        pytest.skip("no host C compiler")
    return compiler


def _assert_c_prints_the_exact_name(info_header: Path, name: str, work: Path) -> None:
    """The TD_MODEL_NAME macro compiles (with trigraphs on, the strictest reading) to exactly the name's bytes."""
    work.mkdir()
    source = work / "probe.c"
    source.write_text(f'#include <stdio.h>\n#include "{info_header}"\n'
                      'int main(void) { fputs(TD_MODEL_NAME, stdout); return 0; }\n')
    binary = work / "probe"
    subprocess.run([_host_cc(), "-std=c11", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-o", binary, source],
                   check=True, capture_output=True, timeout=60)
    printed = subprocess.run([binary], capture_output=True, timeout=10).stdout
    assert printed == name.encode("utf-8")


def _assert_compiles(source: Path, project: Path) -> None:
    """The native model source, full of escaped names in comments, compiles cleanly on the host."""
    includes = [f"-I{project / 'src'}", f"-I{project / 'lib' / 'tinydeploy' / 'src'}"]
    result = subprocess.run([_host_cc(), "-std=c11", "-trigraphs", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                             *includes, source], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]


# ------------------------------------------------------------------------------------------- calibration data


def _fake_keras(path: Path) -> Path:
    """Passes the archive checks made before TensorFlow loads, so the calibration checks decide."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", '{"class_name": "Sequential", "config": {}}')
    return path


def test_bad_calibration_data_is_refused_before_tensorflow_loads(tmp_path):
    model = _fake_keras(tmp_path / "model.keras")
    samples = np.random.default_rng(0).normal(size=(20, 4)).astype(np.float32)
    nan, inf, huge = samples.copy(), samples.copy(), samples.astype(np.float64)
    nan[3, 1] = np.nan
    inf[5, 0] = np.inf
    huge[7, 2] = 1e300  # finite in float64, Inf once calibration casts to float32
    files = {"nan.npy": nan, "inf.npy": inf, "huge.npy": huge, "strings.npy": np.array(["a", "b"]),
             "empty.npy": np.zeros((0, 4), np.float32), "scalar.npy": np.float32(1.0)}
    for name, array in files.items():
        np.save(tmp_path / name, array)
    np.savez(tmp_path / "nan_in_archive.npz", x=nan)
    (tmp_path / "text.npy").write_text("1,2,3\n")
    (tmp_path / "truncated.npy").write_bytes((tmp_path / "nan.npy").read_bytes()[:90])
    _write_npz_with_lying_header(tmp_path / "lying.npz")
    expected = {"nan.npy": "NaN or Inf (first in sample 3: a NaN)", "inf.npy": "Inf", "huge.npy": "too large for float32",
                "strings.npy": "dtype", "empty.npy": "no samples", "scalar.npy": "single number",
                "nan_in_archive.npz": "array 'x'", "text.npy": "not a numpy", "truncated.npy": "not a numpy",
                "lying.npz": "more than its data holds", "missing.npy": "not found"}
    jobs = {(name, "convert"): ["convert", model, "--calib", tmp_path / name, "-o", tmp_path / f"{name}.tflite"]
            for name in expected}
    jobs[("nan.npy", "validate")] = ["convert", model, "--calib", "random", "--validate", tmp_path / "nan.npy",
                                     "-o", tmp_path / "v.tflite"]
    jobs[("nan.npy", "generate")] = ["generate", model, "--calib", tmp_path / "nan.npy", "-o", tmp_path / "g"]
    runs = _run_all(jobs)
    for name, fragment in expected.items():
        assert_one_line_error(runs[(name, "convert")], fragment)
    assert_one_line_error(runs[("nan.npy", "validate")], "validation data")
    assert_one_line_error(runs[("nan.npy", "generate")], "NaN")


def _write_npz_with_lying_header(path: Path) -> None:
    """An .npz member whose header claims 2^40 floats but holds eight bytes: numpy would allocate first."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (1 << 40,)}
    import io

    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, header)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("x.npy", b"\x93NUMPY\x01\x00" + buffer.getvalue()[8:] + b"\x00" * 8)


def test_an_hdf5_file_without_a_model_is_refused_before_tensorflow_loads(tmp_path):
    h5py = pytest.importorskip("h5py")
    weights_only = tmp_path / "weights.h5"
    with h5py.File(weights_only, "w") as handle:
        handle.create_dataset("dense/kernel", data=np.zeros((4, 2), np.float32))
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)
    runs = _run_all({(name, command): [command, path, "--calib", "random", "-o", tmp_path / f"{name}-{command}"]
                     for name, path in (("weights", weights_only), ("damaged", damaged))
                     for command in ("convert", "generate")})
    for command in ("convert", "generate"):
        assert_one_line_error(runs[("weights", command)], "without a model config")
        assert_one_line_error(runs[("damaged", command)], "damaged HDF5")


@pytest.mark.slow
def test_files_that_only_keras_can_refuse_and_calibration_of_the_wrong_shape(tmp_path, sine_model_files):
    """These need TensorFlow loaded (~5 s each): a .keras whose config names no model, and calibration samples
    of the wrong shape for a real model (the shape is known only once the model is loaded)."""
    bad_config = tmp_path / "bad_config.keras"
    bad_config.write_bytes(keras_cases()["bad_config.keras"])
    np.save(tmp_path / "wrong_shape.npy", np.zeros((10, 3, 2), np.float32))
    runs = _run_all({
        ("bad_config", "convert"): ["convert", bad_config, "--calib", "random", "-o", tmp_path / "a.tflite"],
        ("wrong_shape", "convert"): ["convert", sine_model_files.keras, "--calib", tmp_path / "wrong_shape.npy",
                                     "-o", tmp_path / "b.tflite"],
    })
    assert_one_line_error(runs[("bad_config", "convert")], "not a loadable Keras model")
    assert_one_line_error(runs[("wrong_shape", "convert")], "has shape (10, 3, 2), the model needs (N, 1)")


def test_the_tiny_base_model_is_valid_so_the_cases_test_what_they_say(tmp_path):
    """Each case is one defect away from this model, which every command accepts."""
    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_model_bytes())
    runs = _run_all({("tiny", command): args for command, args in _commands(model, tmp_path).items()
                     if command != "flash"})
    for key, result in runs.items():
        assert result.returncode == 0, (key, result.stderr)

