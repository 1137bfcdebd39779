"""analyze's work grows with the graph linearly (n log n at most), pass by pass. The work is counted, not timed:
Python lines and calls executed, the same on every machine. A linear pass does 4 times the work on a graph 4 times
larger, a quadratic one 16 times (analyze on 20,000 tensors took 68 s and on 100,000 over 10 minutes; timings per
size are in bench/analyze_scale.py)."""

from __future__ import annotations

import io
import sys

import pytest

from tests.corpus.make_corpus import chain_model, pack

SMALL, LARGE = 50, 200  # ops of the chains compared (151 and 601 tensors)
MAX_RATIO = 6.0  # linear: 4; n log n: ~4.5; quadratic: ~16


def executed(work) -> int:
    """Lines and calls of Python executed by work()."""
    count = 0

    def tracer(frame, event, arg):
        nonlocal count
        count += 1
        return tracer

    sys.settrace(tracer)
    try:
        work()
    finally:
        sys.settrace(None)
    return count


def _passes():
    from rich.console import Console

    from tinydeploy.analysis.analyze import tflm_arena
    from tinydeploy.analysis.compute import op_costs
    from tinydeploy.analysis.fit import suggestions
    from tinydeploy.analysis.memory import activation_profile
    from tinydeploy.boards import all_boards, get_board
    from tinydeploy.engine.codegen import plan_native
    from tinydeploy.engines import get_engine
    from tinydeploy.flow import analyze
    from tinydeploy.model.tflite import parse_tflite
    from tinydeploy.report import render_analysis

    board = get_board("virtual")

    def fit(model):
        flash, ram = get_engine("tflm").budgets(board, model, 10**7)
        suggestions(model, flash, ram, 10**7, all_boards(), board)

    def report(model, engine):
        render_analysis(analyze(model, board, engine), Console(file=io.StringIO(), width=160))

    return {
        "load and check the model": lambda data, model: parse_tflite(data),
        "MACs and parameters": lambda data, model: op_costs(model),
        "activation memory": lambda data, model: activation_profile(model),
        "TFLM arena (from the cache, checked against the model)": lambda data, model: tflm_arena(model),
        "fit and suggestions": lambda data, model: fit(model),
        "JSON report": lambda data, model: analyze(model, board, "tflm").to_json(),
        "terminal report": lambda data, model: report(model, "tflm"),
        "native engine plan": lambda data, model: plan_native(model),
        "native report": lambda data, model: report(model, "native"),
    }


@pytest.fixture(scope="module")
def chains():
    from tinydeploy.analysis.analyze import tflm_arena
    from tinydeploy.model.tflite import parse_tflite

    built = {}
    for ops in (3, SMALL, LARGE):
        data = pack(chain_model(ops))
        model = parse_tflite(data)
        tflm_arena(model)  # measured once by TFLM (real probes), then cached for the passes counted below
        built[ops] = (data, model)
    return built


@pytest.mark.slow
@pytest.mark.parametrize("name", list(_passes()))
def test_each_analysis_pass_grows_linearly_with_the_graph(chains, name):
    work = _passes()[name]
    executed(lambda: work(*chains[3]))  # first use: imports, caches
    small = executed(lambda: work(*chains[SMALL]))
    large = executed(lambda: work(*chains[LARGE]))
    assert large <= MAX_RATIO * small, f"{name}: {small:,} -> {large:,} ({large / small:.1f}x for 4x the graph)"


def test_a_huge_graph_prints_a_bounded_table_and_the_peak():
    from tinydeploy.report import shown_rows

    rows = shown_rows(100_000, 54_321)
    assert len(rows) < 100 and 54_321 in rows and rows[0] == 0 and rows[-1] == 99_999
    assert None in rows  # marks the ops left out
    assert shown_rows(40, 7) == list(range(40))


def test_the_arena_search_is_bounded_in_time_and_then_says_its_figure_is_an_upper_bound(monkeypatch):
    """TFLM allocates the whole model at every probe; on a huge graph the search stops after SEARCH_SECONDS with
    the smallest size known to fit (real TFLM probes, on the tiny model with the budget set to nothing)."""
    from tinydeploy.analysis import arena
    from tinydeploy.model.tflite import parse_tflite

    model = parse_tflite(pack(chain_model(2)))
    exact = arena.measure_tflm_arena(model)
    monkeypatch.setattr(arena, "SEARCH_SECONDS", 0.0)
    bounded = arena.measure_tflm_arena(model)
    assert exact.measured and not exact.note
    assert bounded.measured and bounded.host_bytes >= exact.host_bytes and bounded.probes < exact.probes
    assert "upper bound" in bounded.note and bounded.consistent_with(model)
