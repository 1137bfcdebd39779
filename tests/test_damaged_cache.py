"""Cache entries with the right shape but nonsense values (negative, tiny, NaN, wrong types), made for another
model or with other tool versions, cut short or replaced by a FIFO: each is measured again, never used, and no
figure printed is negative or NaN. Real measurements (TFLM's allocator) and the real CLI."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.corpus.make_corpus import tiny_model_bytes


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """The tiny model analyzed once into a cache of its own: (model path, cache dir, entry path, fresh JSON)."""
    root = tmp_path_factory.mktemp("cache")
    model = root / "tiny.tflite"
    model.write_bytes(tiny_model_bytes())
    cache = root / "cache"
    result = run_cli("analyze", model, "--json", env={"TINYDEPLOY_CACHE_DIR": str(cache)})
    assert result.returncode in (0, 1), result.stderr
    (entry,) = (cache / "arena").glob("*.json")
    again = run_cli("analyze", model, "--json", env={"TINYDEPLOY_CACHE_DIR": str(cache)})
    assert json.loads(again.stdout)["arena_from_cache"] is True  # a good entry is used
    return model, cache, entry, json.loads(result.stdout)


def _set(record: dict, path: str, value) -> dict:
    """`record` with the field at `path` ("data.host_bytes") set; an entry without the "data" level (a cache of
    an older layout) has its fields at the top."""
    record = json.loads(json.dumps(record))
    node = record
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {}) if key != "data" or "data" in node else node
    node[last] = value
    return record


def _fields(record: dict) -> dict:
    return record["data"] if isinstance(record.get("data"), dict) else record


DAMAGES = {
    "negative host arena": lambda r: _set(r, "data.host_bytes", -946_283),
    "tiny host arena": lambda r: _set(r, "data.host_bytes", 1),
    "tiny target arena": lambda r: _set(r, "data.target_bytes", 1),
    "NaN": lambda r: json.dumps(r).replace('"target_bytes": ', '"target_bytes": NaN, "x": '),
    "infinite margin": lambda r: json.dumps(r).replace('"kernel_margin_bytes": ', '"kernel_margin_bytes": Infinity, '
                                                                                    '"y": '),
    "a number as text": lambda r: _set(r, "data.target_bytes", "964"),
    "a boolean for a number": lambda r: _set(r, "data.probes", True),
    "a list for the note": lambda r: _set(r, "data.note", ["x"]),
    "a missing field": lambda r: _set(r, "data.measured", None) if "data" not in r else
    {**r, "data": {k: v for k, v in r["data"].items() if k != "measured"}},
    "an absurd size": lambda r: _set(r, "data.host_bytes", 10**15),
    "made for another model": lambda r: _set(r, "made_with.model_sha256", "0" * 64),
    "made with another TFLM": lambda r: _set(r, "made_with.tflite-micro", "0.0.1"),
    "the old format without a record": lambda r: _fields(r),
    "data that is a list": lambda r: _set(r, "data", [1, 2]),
    "cut short": lambda r: json.dumps(r)[:40],
}


def _numbers(value, path="") -> list[tuple[str, float]]:
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [(path, value)]
    if isinstance(value, dict):
        return [item for key, inner in value.items() for item in _numbers(inner, f"{path}.{key}")]
    if isinstance(value, list):
        return [item for index, inner in enumerate(value) for item in _numbers(inner, f"{path}[{index}]")]
    return []


def test_every_damaged_arena_entry_is_measured_again_and_never_printed(measured, tmp_path):
    model, cache, entry, fresh = measured
    good = json.loads(entry.read_text())
    jobs = {}
    for name, damage in DAMAGES.items():
        copy = tmp_path / name.replace(" ", "-")
        shutil.copytree(cache, copy)
        damaged = damage(good)
        (copy / "arena" / entry.name).write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
        jobs[name] = copy
    fifo_cache = tmp_path / "fifo"
    (fifo_cache / "arena").mkdir(parents=True)
    os.mkfifo(fifo_cache / "arena" / entry.name)  # reading it would block for ever
    jobs["a FIFO in the entry's place"] = fifo_cache
    problems = []
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = {name: pool.submit(run_cli, "analyze", model, "--json", timeout=120,
                                  env={"TINYDEPLOY_CACHE_DIR": str(folder)}) for name, folder in jobs.items()}
        for name, future in runs.items():
            try:
                result = future.result()
            except subprocess.TimeoutExpired:
                problems.append(f"{name}: analyze hung")
                continue
            if result.returncode not in (0, 1):
                problems.append(f"{name}: exit {result.returncode}: {result.stderr.strip()[-300:]}")
                continue
            report = json.loads(result.stdout)
            if report["arena_from_cache"] is not False:
                problems.append(f"{name}: the damaged entry was used")
            for key in ("arena_bytes", "arena_bytes_host", "arena_bytes_recommended", "ram_bytes", "fits"):
                if report[key] != fresh[key]:
                    problems.append(f"{name}: {key} {report[key]} instead of {fresh[key]}")
            problems += [f"{name}: {path} = {value}" for path, value in _numbers(report)
                         if not math.isfinite(value) or value < 0]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("used", [-5, 0, 1, 10**12, "4096", 4096.5, None, True])
def test_a_damaged_device_arena_is_not_used(measured, used, tmp_path, monkeypatch):
    """--calibrate-arena's cached figure: a value outside [largest tensor, board RAM], or of the wrong type, is
    ignored and the analyze upper bound is used instead."""
    from tinydeploy.model.tflite import load_tflite
    from tinydeploy.tflm import arena as tflm
    from tinydeploy.tflm.library import resolve_tflm_library

    model_path, cache, _, _ = measured
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    monkeypatch.setenv("TINYDEPLOY_CACHE_DIR", str(copy))
    model = load_tflite(model_path)
    library = resolve_tflm_library(None)
    tflm.store_device_arena(model, "nano33ble", library, 2000)
    (entry,) = (copy / "tflm-arena").glob("*.json")
    assert tflm.arena_for(model, "nano33ble", library).source != "analyze"  # a sound figure is used
    record = json.loads(entry.read_text())
    _fields(record)["used_bytes"] = used
    entry.write_text(json.dumps(record))
    sizing = tflm.arena_for(model, "nano33ble", library)
    assert sizing.source == "analyze", sizing
    assert sizing.arena_bytes > 0
