from __future__ import annotations

import json
from pathlib import Path

import typer

from tinydeploy.commands.flash import COORDINATOR_OPTION, PLACE_OPTION, PLACE_TIMEOUT_OPTION, serial_target
from tinydeploy.errors import EXIT_FAILED, EXIT_OK

PROTOCOLS = ("tinydeploy", "mlperf-tiny")


def bench(
    port: str = typer.Option(None, "--port", help="Serial port or URL (e.g. /dev/ttyACM0, socket://127.0.0.1:PORT)."),
    place: str = PLACE_OPTION,
    coordinator: str = COORDINATOR_OPTION,
    place_timeout: float = PLACE_TIMEOUT_OPTION,
    protocol: str = typer.Option("tinydeploy", "--protocol",
                                 help="tinydeploy (a tinydeploy firmware) or mlperf-tiny (any MLPerf Tiny / EEMBC "
                                      "runner compliant firmware, performance mode)."),
    baud: int = typer.Option(115_200, "--baud", help="Baud rate."),
    runs: int = typer.Option(20, "--runs", help="Timed inferences (at most the firmware's limit: "
                             "TD_PROTOCOL_MAX_RUNS, or TD_MLPERF_MAX_INFER with --protocol mlperf-tiny)."),
    warmup: int = typer.Option(2, "--warmup", help="Untimed inferences before them (at most "
                               "TD_PROTOCOL_MAX_WARMUP, or TD_MLPERF_MAX_WARMUP)."),
    model_path: Path = typer.Option(None, "--model", help=".tflite the device runs: sizes a random input and "
                                    "checks the device's outputs against host TFLM."),
    input_path: Path = typer.Option(None, "--input", help="Raw input tensor bytes to send (default: random); for a "
                                    "model with several inputs, their bytes one after another in model order."),
    input_bytes: int = typer.Option(None, "--input-bytes", min=1, help="Size of a random input when there is no "
                                    "--model or --input (mlperf-tiny devices do not tell it)."),
    timeout: float = typer.Option(60.0, "--timeout", min=0.1, help="Seconds to wait for an answer (during a run: for "
                                 "each line that advances it)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> int:
    """Benchmark a device that already runs its firmware: latency, and outputs against host TFLM with --model."""
    from rich.console import Console
    from rich.table import Table

    from tinydeploy.errors import TinydeployError

    if protocol not in PROTOCOLS:
        raise TinydeployError(f"unknown protocol '{protocol}'", f"use one of: {', '.join(PROTOCOLS)}")
    from tinydeploy.link.limits import check_run_counts

    check_run_counts(runs, warmup, protocol)
    model = None
    if model_path is not None:
        from tinydeploy.model.tflite import load_tflite

        model = load_tflite(model_path)
    data = _input(model, input_path, input_bytes, protocol)
    with serial_target(port, place, coordinator, place_timeout) as url:
        if protocol == "mlperf-tiny":
            report = _bench_mlperf(url, baud, timeout, data, runs, warmup, model)
        else:
            report = _bench_tinydeploy(url, baud, timeout, data, runs, warmup, model)
    if place:
        report["port"] = place
    if as_json:
        print(json.dumps(report, indent=2))
    else:
        table = Table(title=f"bench {place or port} ({protocol})", show_header=False)
        for key, value in report.items():
            if isinstance(value, list):
                shown = (f"{v:g}" if isinstance(v, (int, float)) else str(v) for v in value[:12])
                text = ", ".join(shown) + (f" ... ({len(value)} values)" if len(value) > 12 else "")
            else:
                text = str(value)
            table.add_row(key, text)
        Console().print(table)
    return EXIT_FAILED if report.get("outputs_match") is False else EXIT_OK


def _input(model, input_path: Path | None, input_bytes: int | None, protocol: str) -> bytes | None:
    from tinydeploy.errors import TinydeployError

    if input_path is not None:
        from tinydeploy.fsutil import read_input_file

        return read_input_file(input_path, "input file")
    if model is not None:
        from tinydeploy.golden import random_samples

        return b"".join(random_samples(model, 1, seed=0)[0])
    if input_bytes is not None:
        import random

        return random.Random(0).randbytes(input_bytes)
    if protocol == "mlperf-tiny":
        raise TinydeployError("an MLPerf Tiny device does not say its input size",
                              "give --model MODEL.tflite, --input FILE or --input-bytes N")
    return None  # the tinydeploy protocol tells the size


def _expected(model, data: bytes) -> bytes:
    from tinydeploy.golden import tflm_outputs

    return tflm_outputs(model, [data])[0]


def _results_match(model, data: bytes, results: list[float]) -> bool:
    """Raw int8 results must equal host TFLM's; dequantized ones must agree within one quantization step
    plus the 3 decimals the reference firmware prints."""
    import numpy as np

    expected = np.frombuffer(_expected(model, data), dtype=np.int8).astype(np.float64)
    got = np.array(results, dtype=np.float64)
    if got.shape != expected.shape:
        return False
    if np.array_equal(got, expected):
        return True
    tensor = model.tensors[model.outputs[0]]
    scale, zero_point = tensor.quant.scales[0], tensor.quant.zero_points[0]
    return bool(np.all(np.abs(got - (expected - zero_point) * scale) <= scale + 0.0015))


def _bench_mlperf(port, baud, timeout, data, runs, warmup, model) -> dict:
    from tinydeploy.link.mlperf import MlperfTinyLink

    with MlperfTinyLink(port, baud, timeout) as link:
        link.wait_ready(min(timeout, 30.0))
        name = link.name()
        profile = link.profile()
        link.load(data)
        inference = link.infer(runs, warmup)
        results = inference.results
        if model is not None and runs + warmup > 1:
            # the first inference may consume the input (tinydeploy's firmware loads it into the model's own
            # tensor): the results to check come from one inference on a fresh load
            link.load(data)
            results = link.infer(1, 0).results
    report = {"port": port, "protocol": "mlperf-tiny", "name": name, "profile": profile.get("profile", ""),
              "model": profile.get("model", ""), "runs": runs, "warmup": warmup,
              "elapsed_us": inference.elapsed_us, "latency_us": round(inference.latency_us, 1),
              "throughput_per_s": round(inference.throughput, 3), "results": inference.results}
    if model is not None:
        report["outputs_match"] = _results_match(model, data, results)
    return report


def _bench_tinydeploy(port, baud, timeout, data, runs, warmup, model) -> dict:
    from tinydeploy.flow import time_running_device

    timing = time_running_device(port, baud, runs, warmup, data, timeout, ready_timeout=min(timeout, 30.0))
    info, stats, ram, data = timing.info, timing.latency_us, timing.ram, timing.input
    report = {"port": port, "protocol": "tinydeploy", "board": info.board, "engine": info.engine,
              "model": info.model, "runs": runs, "warmup": warmup, "latency_us": stats.median,
              "latency_us_p95": stats.p95, "latency_us_min": stats.min, "latency_us_max": stats.max,
              "stack_bytes": ram.stack_high_water, "activation_bytes": ram.activation_bytes}
    if timing.op_us is not None:  # a profiling build (flash --profile, --td-profile): each op's time
        report["op_us"] = [round(us, 1) for us in timing.op_us]
        if model is not None and len(model.operators) == len(timing.op_us):
            report["ops"] = [op.op for op in model.operators]
    if model is not None:
        from tinydeploy.golden import tflm_sample_outputs

        report["outputs_match"] = timing.outputs == tflm_sample_outputs(model, [data])[0]
    return report
