"""Accuracy on the board (`flash --data`): every sample of a data set through the float model (when the model given
was one), host int8 (TFLM's interpreter, `tflite_micro`) and the device, side by side.

Classifiers get top-1 accuracy and a confusion matrix; other models RMSE and the largest error against the targets.
Device and host run the same int8 model, so their outputs are compared byte for byte (agreement), and the samples
that differ are listed. One input and one output tensor, through today's DeviceLink (infer = load, run, read).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.model.tflite import TfliteModel

MAX_SAMPLES = 100_000
MAX_LISTED = 50  # differing samples listed in the report
SampleProgress = Callable[[int, int], None]  # (done, total)


# ---- the data set -------------------------------------------------------------------------------------------


@dataclass
class DataSet:
    x: np.ndarray  # (N, ...) one sample per row
    y: np.ndarray | None  # labels (N,) or targets (N, ...)
    source: Path
    names: list[str] = field(default_factory=list)  # per-sample file names (a folder of .npy files)

    def __len__(self) -> int:
        return len(self.x)


def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise TinydeployError(f"cannot read {what} {path}: {' '.join(str(exc).split())[:120]}",
                              "give an array saved with numpy.save (no pickled objects)") from exc


def load_dataset(path: Path) -> DataSet:
    """`--data`: an .npz with arrays `x` and optional `y`; an .npy of inputs; or a folder with x.npy (and y.npy),
    one .npy per sample, or one sub-folder of .npy samples per class (the sub-folders' sorted names are the
    classes; all-number names are used as the class numbers)."""
    path = Path(path)
    if not path.exists():
        raise TinydeployError(f"data set {path} does not exist",
                              "give an .npz with arrays x and y, or a folder of .npy")
    if path.is_dir():
        return _load_folder(path)
    if path.suffix.lower() == ".npy":
        return DataSet(_load_npy(path, "data set"), None, path)
    if path.suffix.lower() != ".npz":
        raise TinydeployError(f"data set {path} is neither .npz, .npy nor a folder",
                              "save it with numpy.savez(path, x=inputs, y=labels)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            keys = list(archive.keys())
            if "x" not in keys:
                raise TinydeployError(f"{path} has no array 'x' (it has {', '.join(keys) or 'none'})",
                                      "save the inputs as x and the labels as y: numpy.savez(path, x=..., y=...)")
            return DataSet(archive["x"], archive["y"] if "y" in keys else None, path)
    except (OSError, ValueError, EOFError) as exc:
        raise TinydeployError(f"cannot read data set {path}: {' '.join(str(exc).split())[:120]}",
                              "give an .npz written by numpy.savez (no pickled objects)") from exc


def _load_folder(folder: Path) -> DataSet:
    if (folder / "x.npy").is_file():
        y = _load_npy(folder / "y.npy", "labels") if (folder / "y.npy").is_file() else None
        return DataSet(_load_npy(folder / "x.npy", "inputs"), y, folder)
    classes = sorted(p for p in folder.iterdir() if p.is_dir() and any(p.glob("*.npy")))
    files = sorted(folder.glob("*.npy"))
    if classes and files:
        raise TinydeployError(f"{folder} holds both .npy samples and class folders",
                              "keep either one .npy per sample or one sub-folder of samples per class")
    if classes:
        numbered = all(p.name.isdigit() for p in classes)
        samples, labels, names = [], [], []
        for index, directory in enumerate(classes):
            for file in sorted(directory.glob("*.npy")):
                samples.append(_load_npy(file, "sample"))
                labels.append(int(directory.name) if numbered else index)
                names.append(f"{directory.name}/{file.name}")
        return DataSet(_stack(samples, names, folder), np.array(labels), folder, names)
    if not files:
        raise TinydeployError(f"{folder} has no .npy files",
                              "give a folder with x.npy (and y.npy), one .npy per sample, or one folder per class")
    return DataSet(_stack([_load_npy(f, "sample") for f in files], [f.name for f in files], folder), None, folder,
                   [f.name for f in files])


def _stack(samples: list[np.ndarray], names: list[str], folder: Path) -> np.ndarray:
    first = samples[0].shape
    for array, name in zip(samples, names):
        if array.shape != first:
            raise TinydeployError(f"sample {name} in {folder} has shape {array.shape}, the first one {first}",
                                  "give every sample the model's input shape")
    return np.stack(samples)


def _shape_text(shape) -> str:
    return "(" + ", ".join(str(int(d)) for d in shape) + ")"


@dataclass
class PreparedData:
    """The data set checked against the model: float samples (for the float model), the int8 bytes for TFLM and
    the device, and the targets."""

    values: np.ndarray | None  # (N, *sample_shape) float32 real values; None when given already quantized
    inputs: list[bytes]  # each sample as the model's input tensor bytes
    kind: str  # "classifier" (integer labels), "regression" (targets), or "unlabelled"
    labels: np.ndarray | None  # (N,) classes for classifiers
    targets: np.ndarray | None  # (N, outputs) for regression
    classes: int  # output elements per sample


def prepare(model: TfliteModel, data: DataSet) -> PreparedData:
    """Checks the data's shape and dtype against the model's input, quantizes real values with the input's scale
    and zero point, and reads the labels: one-line errors naming the problem and the fix."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise TinydeployError(f"{model.name} has {len(model.inputs)} input(s) and {len(model.outputs)} output(s); "
                              "--data runs models with one of each so far", "leave out --data for this model")
    tensor = model.tensors[model.inputs[0]]
    shape = tuple(int(d) for d in tensor.shape)
    sample_shape = shape[1:] if len(shape) > 1 and shape[0] == 1 else shape
    x = data.x
    if x.dtype.kind not in "biuf":
        raise TinydeployError(f"x in {data.source} has dtype {x.dtype}, not numbers",
                              "save the inputs as a float32 (real values) or int8 (quantized) array")
    if x.ndim == len(shape) and shape[0] == 1 and len(shape) > 1 and x.shape[1:] == sample_shape:
        pass
    elif x.shape[1:] == shape:  # (N, 1, ...)
        x = x.reshape((len(x),) + sample_shape)
    elif x.shape == sample_shape:
        raise TinydeployError(f"x in {data.source} is one sample of shape {_shape_text(x.shape)}",
                              f"stack the samples into shape (N, {', '.join(map(str, sample_shape))})")
    else:
        raise TinydeployError(f"x in {data.source} has shape {_shape_text(x.shape)} but {model.name} takes "
                              f"samples of shape {_shape_text(sample_shape)}",
                              f"reshape x to (N, {', '.join(map(str, sample_shape))})")
    count = len(x)
    if count == 0:
        raise TinydeployError(f"x in {data.source} has no samples", "give at least one sample")
    if count > MAX_SAMPLES:
        raise TinydeployError(f"x in {data.source} has {count:,} samples (at most {MAX_SAMPLES:,})",
                              "give a smaller test set")
    dtype = np.dtype(tensor.dtype)
    values = None
    if x.dtype == dtype and dtype.kind in "iu":
        quantized = x  # already the model's input type: sent as it is
    elif dtype.kind == "f":
        values = x.astype(np.float32)
        quantized = values
    else:
        values = x.astype(np.float32)
        if not np.all(np.isfinite(values)):
            raise TinydeployError(f"x in {data.source} has NaN or infinite values", "clean the data set")
        quant = tensor.quant
        if quant is None or not len(quant.scales):
            raise TinydeployError(f"{model.name}'s {dtype.name} input has no quantization parameters",
                                  f"give x as {dtype.name} values")
        scale, zero = float(quant.scales[0]), int(quant.zero_points[0])
        info = np.iinfo(dtype)
        quantized = np.clip(np.round(values / scale) + zero, info.min, info.max).astype(dtype)
    inputs = [np.ascontiguousarray(sample).tobytes() for sample in quantized]
    out = model.tensors[model.outputs[0]]
    classes = int(np.prod(out.shape[1:] if len(out.shape) > 1 and out.shape[0] == 1 else out.shape))
    kind, labels, targets = _targets(data, count, classes)
    return PreparedData(values, inputs, kind, labels, targets, classes)


def _targets(data: DataSet, count: int, classes: int):
    y = data.y
    if y is None:
        return "unlabelled", None, None
    if y.dtype.kind not in "biuf":
        raise TinydeployError(f"y in {data.source} has dtype {y.dtype}, not numbers",
                              "save class numbers (int) or target values (float) as y")
    if len(y) != count:
        raise TinydeployError(f"y in {data.source} has {len(y)} rows but x has {count} samples",
                              "give one label (or target row) per sample")
    flat = y.reshape(count, -1)
    integral = y.dtype.kind in "biu" or bool(np.all(np.equal(np.mod(flat, 1), 0)))
    if classes >= 2 and flat.shape[1] == 1 and integral:
        labels = flat[:, 0].astype(np.int64)
        bad = labels[(labels < 0) | (labels >= classes)]
        if len(bad):
            raise TinydeployError(f"y in {data.source} has label {int(bad[0])} but the model has {classes} classes "
                                  f"(0..{classes - 1})", "number the classes as the model's outputs are ordered")
        return "classifier", labels, None
    if classes >= 2 and flat.shape[1] == classes and integral and np.all(flat.sum(axis=1) == 1) and \
            np.all((flat == 0) | (flat == 1)):
        return "classifier", np.argmax(flat, axis=1), None  # one-hot
    if flat.shape[1] != classes:
        raise TinydeployError(f"y in {data.source} has {flat.shape[1]} values per sample but the model outputs "
                              f"{classes}", "give class numbers (N,) for a classifier, or (N, "
                              f"{classes}) targets for a regression")
    return "regression", None, flat.astype(np.float64)


# ---- the float model ------------------------------------------------------------------------------------------


def float_outputs(source: Path, values: np.ndarray, progress: Callable[[str], None] | None = None) \
        -> tuple[np.ndarray | None, str]:
    """The float model's outputs (N, outputs) on the real-valued samples, and what ran it (or why it did not)."""
    from tinydeploy.model.convert import detect_format

    source = Path(source)
    try:
        kind = detect_format(source)
    except TinydeployError:
        return None, "no float model (an int8 model was given)"
    if progress is not None:
        progress("running the float model on the data set")
    if kind in ("keras", "h5"):
        from tinydeploy.model.convert import _load_keras, import_tensorflow

        import_tensorflow()
        keras_model, loader = _load_keras(source)
        outputs = [np.asarray(keras_model(values[i:i + 64], training=False)) for i in range(0, len(values), 64)]
        return np.concatenate(outputs).reshape(len(values), -1).astype(np.float64), f"Keras ({loader})"
    if kind == "saved_model":
        import tempfile

        from tinydeploy.model.convert import _export_batch1_saved_model, _FloatModel, import_tensorflow

        tf = import_tensorflow()
        with tempfile.TemporaryDirectory(prefix="tinydeploy-float-") as tmp:
            _export_batch1_saved_model(tf, source, Path(tmp) / "batch1")
            model = _FloatModel(tf, Path(tmp) / "batch1")
            rows = [np.concatenate([v.reshape(-1) for _, v in sorted(model(s).items())]) for s in values]
        return np.stack(rows).astype(np.float64), "TensorFlow SavedModel"
    if kind == "tflite":
        from tinydeploy.model.tflite import load_tflite

        model = load_tflite(source)
        if model.tensors[model.inputs[0]].dtype != "float32":
            return None, "no float model (a quantized .tflite was given)"
        from tflite_micro import runtime

        try:
            interpreter = runtime.Interpreter.from_bytes(model.raw, arena_size=max(1 << 20, 8 * model.size_bytes))
            rows = []
            shape = model.tensors[model.inputs[0]].shape
            for sample in values:
                interpreter.set_input(sample.reshape(shape).astype(np.float32), 0)
                interpreter.invoke()
                rows.append(np.asarray(interpreter.get_output(0), dtype=np.float64).reshape(-1))
        except (RuntimeError, ValueError) as exc:
            return None, f"the float .tflite did not run in TFLM: {' '.join(str(exc).split())[:100]}"
        return np.stack(rows), "float .tflite (TFLM)"
    return None, f"float outputs of {kind} models are not run yet"


# ---- the comparison -------------------------------------------------------------------------------------------


def dequantize(model: TfliteModel, outputs: list[bytes]) -> np.ndarray:
    tensor = model.tensors[model.outputs[0]]
    dtype = np.dtype(tensor.dtype)
    raw = np.stack([np.frombuffer(o, dtype=dtype) for o in outputs]).astype(np.float64)
    if dtype.kind in "iu" and tensor.quant is not None and len(tensor.quant.scales):
        return (raw - int(tensor.quant.zero_points[0])) * float(tensor.quant.scales[0])
    return raw


@dataclass
class Column:
    """One way of running the model on the data set."""

    name: str  # "float", "host int8", "device"
    outputs: np.ndarray  # (N, outputs), real values
    accuracy: float | None = None
    confusion: list[list[int]] | None = None  # [true][predicted]
    rmse: float | None = None
    max_error: float | None = None

    def to_json(self) -> dict:
        return {"accuracy": self.accuracy, "confusion_matrix": self.confusion, "rmse": self.rmse,
                "max_error": self.max_error}


@dataclass
class AccuracyReport:
    source: Path
    samples: int
    kind: str
    classes: int
    columns: list[Column]
    device_raw: list[bytes]
    host_raw: list[bytes]
    engine: str
    exact_engine: bool  # the engine is bit-exact with host TFLM: every output must agree
    float_note: str = ""
    names: list[str] = field(default_factory=list)

    @property
    def differing(self) -> list[int]:
        return [i for i, (a, b) in enumerate(zip(self.device_raw, self.host_raw)) if a != b]

    @property
    def agreement(self) -> float:
        return 1.0 - len(self.differing) / self.samples

    @property
    def passed(self) -> bool:
        return not (self.exact_engine and self.differing) and len(self.device_raw) == self.samples

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def differences(self) -> list[dict]:
        host, device = self.column("host int8"), self.column("device")
        rows = []
        for index in self.differing[:MAX_LISTED]:
            a = np.frombuffer(self.host_raw[index], dtype=np.uint8)
            b = np.frombuffer(self.device_raw[index], dtype=np.uint8)
            row = {"sample": index, "bytes_differing": int(np.count_nonzero(a != b)),
                   "max_difference": float(np.max(np.abs(host.outputs[index] - device.outputs[index])))}
            if self.names:
                row["name"] = self.names[index]
            if self.kind != "regression" and self.classes >= 2:
                row["host_top1"] = int(np.argmax(host.outputs[index]))
                row["device_top1"] = int(np.argmax(device.outputs[index]))
            rows.append(row)
        return rows

    def to_json(self) -> dict:
        return {
            "data": str(self.source), "samples": self.samples, "kind": self.kind, "classes": self.classes,
            "engine": self.engine,
            "columns": {c.name: c.to_json() for c in self.columns},
            "float": self.float_note,
            "agreement_device_host": self.agreement,
            "agreement_required": self.exact_engine,
            "differing_samples": self.differing,
            "differences": self.differences(),
            "passed": self.passed,
        }


def _score(column: Column, prepared: PreparedData) -> Column:
    if prepared.kind == "classifier":
        predicted = np.argmax(column.outputs, axis=1)
        column.accuracy = float(np.mean(predicted == prepared.labels))
        matrix = np.zeros((prepared.classes, prepared.classes), dtype=np.int64)
        np.add.at(matrix, (prepared.labels, predicted), 1)
        column.confusion = matrix.tolist()
    elif prepared.kind == "regression":
        error = column.outputs - prepared.targets
        column.rmse = float(math.sqrt(float(np.mean(error ** 2))))
        column.max_error = float(np.max(np.abs(error)))
    return column


def host_outputs(model: TfliteModel, prepared: PreparedData) -> list[bytes]:
    from tinydeploy.golden import tflm_outputs

    return tflm_outputs(model, prepared.inputs)


def run_on_device(infer: Callable[[bytes], bytes], prepared: PreparedData,
                  on_sample: SampleProgress | None = None) -> list[bytes]:
    outputs = []
    total = len(prepared.inputs)
    for index, data in enumerate(prepared.inputs):
        outputs.append(infer(data))
        if on_sample is not None:
            on_sample(index + 1, total)
    return outputs


def compare(model: TfliteModel, data: DataSet, prepared: PreparedData, host_raw: list[bytes],
            device_raw: list[bytes], engine: str, exact_engine: bool,
            float_values: np.ndarray | None = None, float_note: str = "") -> AccuracyReport:
    columns = []
    if float_values is not None:
        if float_values.shape != (len(host_raw), prepared.classes):
            float_note = (f"the float model's outputs have shape {float_values.shape}, the int8 model's "
                          f"({len(host_raw)}, {prepared.classes}): not compared")
        else:
            columns.append(_score(Column("float", float_values), prepared))
    columns.append(_score(Column("host int8", dequantize(model, host_raw)), prepared))
    columns.append(_score(Column("device", dequantize(model, device_raw)), prepared))
    return AccuracyReport(data.source, len(host_raw), prepared.kind, prepared.classes, columns, device_raw, host_raw,
                          engine, exact_engine, float_note, data.names)


# ---- output: table and plot -----------------------------------------------------------------------------------


def render_accuracy(report: AccuracyReport, console) -> None:
    from rich.table import Table

    table = Table(title=f"accuracy on {report.samples} samples of {report.source.name} ({report.kind})")
    table.add_column("")
    for column in report.columns:
        table.add_column(column.name, justify="right")
    if report.kind == "classifier":
        table.add_row("top-1 accuracy", *[f"{c.accuracy:.2%}" for c in report.columns])
    elif report.kind == "regression":
        table.add_row("RMSE", *[f"{c.rmse:.4g}" for c in report.columns])
        table.add_row("max error", *[f"{c.max_error:.4g}" for c in report.columns])
    if report.classes >= 2 and report.kind != "regression":
        device_top1 = np.argmax(report.column("device").outputs, axis=1)
        table.add_row("top-1 same as the device's",
                      *["-" if c.name == "device" else f"{np.mean(np.argmax(c.outputs, axis=1) == device_top1):.2%}"
                        for c in report.columns])
    table.add_row("outputs identical to the device's", *["-" if c.name != "host int8" else f"{report.agreement:.2%}"
                                                         for c in report.columns])
    console.print(table)
    if report.float_note:
        console.print(f"float model: {report.float_note}")
    device = report.column("device")
    if device.confusion is not None and report.classes <= 20:
        matrix = Table(title="device confusion matrix (rows: true class, columns: predicted)")
        matrix.add_column("")
        for index in range(report.classes):
            matrix.add_column(str(index), justify="right")
        for index, row in enumerate(device.confusion):
            matrix.add_row(str(index), *[str(v) if v else "." for v in row])
        console.print(matrix)
    differing = report.differing
    verdict = "required: the engine is bit-exact" if report.exact_engine else "reported"
    if not differing:
        console.print(f"device outputs identical to host int8 on all {report.samples} samples ({verdict})")
    else:
        listed = ", ".join(str(d["sample"]) for d in report.differences())
        more = f" (first {MAX_LISTED})" if len(differing) > MAX_LISTED else ""
        console.print(f"[{'red' if report.exact_engine else 'yellow'}]{len(differing)} of {report.samples} samples "
                      f"differ from host int8 ({verdict}){more}: {listed}[/]")


def plot_confusion(report: AccuracyReport, path: Path) -> None:
    """The confusion matrices (host int8 and device, and float when run) side by side, as an image."""
    import io

    try:
        import matplotlib
    except ImportError as exc:
        raise TinydeployError("--plot needs matplotlib, which is not installed",
                              "pip install matplotlib (a tinydeploy dependency)") from exc
    from tinydeploy.fsutil import atomic_write_bytes

    if report.kind != "classifier":
        raise TinydeployError(f"--plot draws a confusion matrix, and this data set is {report.kind}",
                              "give integer class labels as y, or leave out --plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = [c for c in report.columns if c.confusion is not None]
    size = min(14.0, 1.5 + 0.45 * report.classes)
    fig, axes = plt.subplots(1, len(columns), figsize=(size * len(columns), size), squeeze=False)
    for ax, column in zip(axes[0], columns):
        matrix = np.array(column.confusion)
        ax.imshow(matrix, cmap="Blues")
        ax.set_title(f"{column.name}: top-1 {column.accuracy:.1%}")
        ax.set_xlabel("predicted class")
        ax.set_ylabel("true class")
        ax.set_xticks(range(report.classes))
        ax.set_yticks(range(report.classes))
        if report.classes <= 20:
            peak = matrix.max() or 1
            for (row, col), value in np.ndenumerate(matrix):
                if value:
                    ax.text(col, row, str(value), ha="center", va="center", fontsize=8,
                            color="white" if value > peak / 2 else "black")
    fig.suptitle(f"{report.samples} samples of {report.source.name}, engine {report.engine}")
    fig.tight_layout(rect=(0, 0.01, 1, 0.96))
    buffer = io.BytesIO()
    fig.savefig(buffer, format=path.suffix.lstrip(".").lower() or "png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
