"""Full-integer int8 conversion of Keras and SavedModel models (TensorFlow is imported only in here, lazily).

Route: export the model as a SavedModel whose one signature takes a batch of exactly 1 (so the converter
emits no SHAPE/STRIDED_SLICE/PACK ops for a dynamic batch), convert that with Optimize.DEFAULT, int8
builtins, int8 input and output and a representative dataset, then run float and int8 side by side on
sample inputs to report how far apart they are.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tinydeploy.errors import TinydeployError
from tinydeploy.fsutil import (atomic_write_bytes, check_input_file, check_output_path, read_input_file,
                               sha256_bytes)
from tinydeploy.model.classify import KIND_TEXT
from tinydeploy.model.tflite import TfliteModel, parse_tflite

RANDOM_CALIB = "random"
RANDOM_CALIB_SAMPLES = 64
MAX_CALIB_SAMPLES = 300  # calibration time grows with samples; a few hundred pin the ranges down
MAX_VALIDATE_SAMPLES = 1000
DYNAMIC_BATCH_OPS = ("SHAPE", "STRIDED_SLICE", "PACK")
# An activation scale no real signal has (int8 range of +-1e8): the range took in an 'infinite' constant.
ABSURD_ACTIVATION_SCALE = 1e6
KERAS_SUFFIXES = (".keras", ".h5", ".hdf5")
INSTALL_HINT = "pip install 'tinydeploy[convert]'"
# TFLM's int8 SOFTMAX asserts beta * input_scale * 2^26 > 1 in Prepare (it abort()s otherwise).
SOFTMAX_MIN_SCALED_BETA = 2.0 ** -26


@dataclass
class OutputAgreement:
    name: str
    kind: str  # "classifier" (top-1 compared) or "values" (RMSE in float units)
    rmse: float
    max_abs_error: float
    lsb: float  # one step of the int8 output, in float units, to read the RMSE against
    top1_agreement: float | None = None


@dataclass
class Agreement:
    source: str  # "calibration" or "validation"
    samples: int
    outputs: list[OutputAgreement]


@dataclass
class ConversionResult:
    tflite: bytes
    source_format: str  # "keras", "h5", "saved_model", "tflite", "onnx", "pt2", "torch_function"
    passthrough: bool
    calibration: str | None  # "random", a file path, or None for a passed-through model
    calibration_samples: int
    agreement: Agreement | None
    warnings: list[str] = field(default_factory=list)
    tensorflow_import_s: float = 0.0  # importing the converter's package (TensorFlow, or the .tflite quantizer)
    convert_s: float = 0.0
    source_info: dict = field(default_factory=dict)  # ONNX/PyTorch: route, layouts, float check (convert_onnx)
    quantizer: str = ""  # what quantized it: "TensorFlow Lite converter" or "ai-edge-quantizer"
    loaded_with: str = ""  # what read the source: "keras", "tf_keras", "tensorflow", "tflite"
    source_kind: str = ""  # a .tflite source's classification (model.classify kind), e.g. "float", "hybrid"

    @property
    def model(self) -> TfliteModel:
        return parse_tflite(self.tflite)

    def to_json(self) -> dict:
        model = self.model
        tensors = model.tensors

        def describe(index: int) -> dict:
            t = tensors[index]
            scale = float(t.quant.scales[0]) if t.quant and len(t.quant.scales) else None
            zero = int(t.quant.zero_points[0]) if t.quant and len(t.quant.zero_points) else None
            return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype, "scale": scale, "zero_point": zero}

        return {
            "source_format": self.source_format,
            "passthrough": self.passthrough,
            "size_bytes": len(self.tflite),
            "sha256": sha256_bytes(self.tflite),
            "inputs": [describe(i) for i in model.inputs],
            "outputs": [describe(i) for i in model.outputs],
            "op_counts": {op: model.op_names.count(op) for op in model.distinct_ops},
            "calibration": self.calibration,
            "calibration_samples": self.calibration_samples,
            "agreement": asdict(self.agreement) if self.agreement else None,
            "warnings": self.warnings,
            "tensorflow_import_s": round(self.tensorflow_import_s, 3),
            "convert_s": round(self.convert_s, 3),
            **({"source_info": self.source_info} if self.source_info else {}),
            "quantizer": self.quantizer or None,
            "loaded_with": self.loaded_with or None,
            "source_kind": self.source_kind or None,
            "classification": model.classification.to_json(),
        }


# ---------------------------------------------------------------------------------------------- inputs


MODEL_HINT = ("give a .keras/.h5 file, a SavedModel directory, an .onnx or .pt2 file, a PyTorch module:function or "
              "an int8 .tflite file")


def detect_format(model_path: Path) -> str:
    """'tflite', 'keras', 'h5', 'saved_model', 'onnx', 'pt2' or 'torch_function' (a `module:function` that returns
    a PyTorch model), from the content where it tells, else the suffix."""
    from tinydeploy.model.convert_torch import is_function_spec

    if not model_path.exists() and is_function_spec(str(model_path)):
        return "torch_function"
    if model_path.is_file() and model_path.suffix.lower() in (".onnx", ".pt2"):
        return model_path.suffix.lower()[1:]
    if not model_path.exists():
        raise TinydeployError(f"model not found: {model_path}", "check the path")
    if model_path.is_dir():
        if (model_path / "saved_model.pb").is_file() or (model_path / "saved_model.pbtxt").is_file():
            return "saved_model"
        raise TinydeployError(f"{model_path} is a directory but not a SavedModel (no saved_model.pb in it)",
                              "give a SavedModel directory, a .keras/.h5 file or a .tflite file")
    head = read_input_file(model_path, "model", limit=8, hint=MODEL_HINT)
    if head[4:8] == b"TFL3":
        return "tflite"
    if head.startswith(b"PK\x03\x04"):
        return "keras"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "h5"
    suffix = model_path.suffix.lower()
    if suffix == ".tflite":
        return "tflite"  # the TFLite reader gives the precise complaint
    if suffix in KERAS_SUFFIXES:
        what = "a Keras zip archive" if suffix == ".keras" else "an HDF5 file"
        raise TinydeployError(f"{model_path} is not a Keras model (it is not {what})",
                              "give a model saved with model.save()")
    raise TinydeployError(f"{model_path} is not a model tinydeploy can read", MODEL_HINT)


def read_sample_arrays(path: Path, what: str) -> dict[str, np.ndarray]:
    """Every array of a .npy/.npz file, each checked for what needs no model: real numbers, at least one
    value, all finite (in float32). Runs before TensorFlow is imported, so bad data fails in a second."""
    check_input_file(path, f"{what} file", "give a .npy or .npz file, or --calib random")
    unreadable = TinydeployError(f"cannot read {what} data {path}: not a numpy .npy/.npz array file",
                                 "save it with numpy.save (.npy) or numpy.savez (.npz)")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # numpy's zip and header readers raise assorted errors on damaged files
        raise unreadable from exc
    if not isinstance(loaded, np.lib.npyio.NpzFile):
        return {"": _check_array(loaded, path, what)}
    with loaded:
        arrays = {}
        for key in loaded.keys():
            _check_npz_member_size(loaded, key, path, what)
            try:
                arrays[key] = _check_array(loaded[key], path, what, key)
            except TinydeployError:
                raise
            except Exception as exc:  # a damaged member: bad zip data, header or pickled objects
                raise TinydeployError(f"cannot read array '{key}' of {path}: {_error_cause(exc)}",
                                      "save it again with numpy.savez") from exc
    if not arrays:
        raise TinydeployError(f"{what} archive {path} holds no arrays", "save the samples with numpy.savez")
    return arrays


def _check_npz_member_size(archive, key: str, path: Path, what: str) -> None:
    """A member's header may claim a shape far larger than its data; numpy would allocate it all first."""
    import zipfile

    member = key if key in archive.zip.namelist() else f"{key}.npy"
    try:
        with archive.zip.open(member) as handle:
            version = np.lib.format.read_magic(handle)
            shape, _, dtype = (np.lib.format.read_array_header_1_0(handle) if version == (1, 0)
                               else np.lib.format.read_array_header_2_0(handle))
        declared = archive.zip.getinfo(member).file_size
    except (KeyError, ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise TinydeployError(f"cannot read array '{key}' of {path}: {_error_cause(exc)}",
                              "save it again with numpy.savez") from exc
    if int(np.prod(shape, dtype=object)) * max(dtype.itemsize, 1) > declared:
        raise TinydeployError(f"{what} archive {path}: array '{key}' claims shape {tuple(shape)}, more than its "
                              "data holds", "save it again with numpy.savez")


def _check_array(array: np.ndarray, path: Path, what: str, key: str = "") -> np.ndarray:
    where = f"{what} data {path}" + (f" (array '{key}')" if key else "")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            or array.dtype == np.bool_):
        raise TinydeployError(f"{where} has dtype {array.dtype}", "give real numbers (float or int)")
    if array.size == 0:
        raise TinydeployError(f"{where} holds no samples (shape {tuple(array.shape)})",
                              "give at least one sample per row")
    if array.ndim == 0:
        raise TinydeployError(f"{where} is a single number, not samples", "stack one sample per row")
    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(array.astype(np.float32, copy=False))
    if not finite.all():
        index = np.argwhere(~finite)[0]
        kind = "a NaN" if np.isnan(array[tuple(index)]) else "an Inf, or a value too large for float32"
        raise TinydeployError(f"{where} contains NaN or Inf (first in sample {int(index[0])}: {kind})",
                              "clean the data before calibrating")
    return array


def load_samples(path: Path, sample_shape: tuple[int, ...], input_name: str, what: str,
                 arrays: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """Samples from a .npy/.npz file as float32 (N, *sample_shape); every defect is a one-line error.
    `arrays` is the file already read by read_sample_arrays."""
    arrays = arrays if arrays is not None else read_sample_arrays(path, what)
    if len(arrays) == 1:
        array = next(iter(arrays.values()))
    elif input_name in arrays:
        array = arrays[input_name]
    else:
        keys = list(arrays)
        raise TinydeployError(f"{what} archive {path} holds {len(keys)} arrays ({', '.join(keys[:6])})",
                              f"keep one array or name it after the model input '{input_name}'")
    return _check_samples(array, sample_shape, path, what)


def _check_samples(array: np.ndarray, sample_shape: tuple[int, ...], path: Path, what: str) -> np.ndarray:
    expected = "(N, " + ", ".join(str(d) for d in sample_shape) + ")"
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)
            or array.dtype == np.bool_):
        raise TinydeployError(f"{what} data {path} has dtype {array.dtype}", "give real numbers (float or int)")
    shape = tuple(array.shape)
    if shape[1:] == sample_shape:
        samples = array
    elif len(shape) == len(sample_shape) + 2 and shape[1] == 1 and shape[2:] == sample_shape:
        samples = array.reshape((shape[0], *sample_shape))  # (N, 1, ...): a batch of 1 per sample
    elif sample_shape == (1,) and len(shape) == 1:
        samples = array.reshape((-1, 1))  # scalars for a model that takes one number
    else:
        raise TinydeployError(f"{what} data {path} has shape {shape}, the model needs {expected}",
                              "stack one sample per row along the first axis")
    if samples.shape[0] == 0:
        raise TinydeployError(f"{what} data {path} holds no samples", f"give at least one sample of shape {expected}")
    with np.errstate(over="ignore", invalid="ignore"):
        samples = samples.astype(np.float32)
    bad = ~np.isfinite(samples)
    if bad.any():
        row = int(np.argwhere(bad)[0][0])
        raise TinydeployError(f"{what} data {path} contains NaN or Inf (first in sample {row})",
                              "clean the data before calibrating")
    return samples


def _error_cause(exc: BaseException) -> str:
    """The whole cause of an exception on one line: the innermost chained exception's text, and of a Keras
    deserialization error the part after its (often huge) config dump. Never cut short."""
    while exc.__cause__ is not None and str(exc.__cause__).strip():
        exc = exc.__cause__
    text = str(exc).strip()
    marker = "Exception encountered:"
    if marker in text:
        text = text.rsplit(marker, 1)[1]
    return " ".join(text.split()) or type(exc).__name__


def _spread(samples: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` samples, spread evenly over the file (files are often sorted by class)."""
    if len(samples) <= limit:
        return samples
    return samples[np.linspace(0, len(samples) - 1, limit).round().astype(int)]


# ---------------------------------------------------------------------------------------------- TensorFlow


@contextlib.contextmanager
def _native_output_captured() -> Iterator[list[str]]:
    """TensorFlow's C++ side prints to fds 1 and 2; keep that out of the user's terminal, but keep it."""
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as sink:
        saved = [os.dup(1), os.dup(2)]
        os.dup2(sink.fileno(), 1)
        os.dup2(sink.fileno(), 2)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for fd in saved:
                os.close(fd)
            sink.seek(0)
            captured.extend(sink.read().decode("utf-8", errors="replace").splitlines())


def import_tensorflow():
    """Import TensorFlow quietly; a one-line error with the install command when it is absent."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        with _native_output_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import tensorflow as tf
    except ImportError as exc:
        raise TinydeployError("converting needs TensorFlow, which is not installed", INSTALL_HINT) from exc
    tf.get_logger().setLevel("ERROR")
    return tf


def _check_keras_archive(model_path: Path) -> None:
    """A .keras file is a zip holding config.json; say so before Keras gives a misleading message."""
    import zipfile

    try:
        with zipfile.ZipFile(model_path) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError) as exc:
        raise TinydeployError(f"{model_path} is not a Keras model (a damaged zip archive)",
                              "give a model saved with model.save()") from exc
    if "config.json" not in names:
        raise TinydeployError(f"{model_path} is not a Keras model (a zip archive without config.json)",
                              "give a model saved with model.save()")
    try:
        with zipfile.ZipFile(model_path) as archive:
            config = json.loads(archive.read("config.json"))
    except (zipfile.BadZipFile, OSError, ValueError, RuntimeError) as exc:  # RuntimeError: encrypted member
        raise TinydeployError(f"{model_path} is not a Keras model (its config.json is damaged or not JSON)",
                              "give a model saved with model.save()") from exc
    if not isinstance(config, dict):
        raise TinydeployError(f"{model_path} is not a Keras model (its config.json is not a JSON object)",
                              "give a model saved with model.save()")


def _check_keras_h5(model_path: Path) -> None:
    """Keras writes its model config as an attribute of the HDF5 root; weights-only files lack it."""
    try:
        import h5py
    except ImportError:  # Keras reports it itself, after the TensorFlow import
        return
    try:
        with h5py.File(model_path, "r") as handle:
            has_config = "model_config" in handle.attrs
    except Exception as exc:  # h5py raises OSError and others on damaged files
        raise TinydeployError(f"{model_path} is not a Keras model (a damaged HDF5 file)",
                              "give a model saved with model.save()") from exc
    if not has_config:
        raise TinydeployError(f"{model_path} is not a Keras model (an HDF5 file without a model config; "
                              "weights only?)", "give a model saved with model.save(), not save_weights()")


def _load_keras(model_path: Path):
    """(model, which Keras loaded it): Keras 3 first; files written by Keras 2 (TF 2.x before 2.16: .h5 files
    and SavedModels with layer options Keras 3 dropped) through the maintained tf_keras package."""
    import keras

    try:
        with _native_output_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return keras.models.load_model(model_path, compile=False), "keras"
    except Exception as exc:  # Keras raises anything from ValueError to OSError on a bad file
        keras3_cause = _error_cause(exc)
        if model_path.suffix.lower() == ".keras":  # a Keras 3 archive: tf_keras cannot read it either
            raise TinydeployError(f"{model_path} is not a loadable Keras model: {keras3_cause}",
                                  "give a model saved with model.save() (custom layers must be importable)") from exc
    try:
        import tf_keras
    except ImportError as missing:
        import tensorflow as tf

        release = ".".join(tf.__version__.split(".")[:2])
        raise TinydeployError(f"Keras 3 cannot load {model_path} ({keras3_cause}); it may be a Keras 2 model, which "
                              "the tf_keras package reads, and that is not installed",
                              f"pip install --no-deps 'tf-keras~={release}.0' (Keras 2 for TensorFlow {release}; "
                              "without --no-deps it pulls the full tensorflow wheel)") from missing
    try:
        with _native_output_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tf_keras.models.load_model(model_path, compile=False), "tf_keras"
    except Exception as exc:
        raise TinydeployError(f"{model_path} is not a loadable Keras model: Keras 3 says: {keras3_cause}; "
                              f"Keras 2 (tf_keras) says: {_error_cause(exc)}",
                              "give a model saved with model.save() (custom layers must be importable)") from exc


def _export_batch1_keras(tf, model_path: Path, export_dir: Path) -> str:
    """Writes the batch-1 SavedModel; returns which Keras read the model ("keras" or "tf_keras")."""
    model, loader = _load_keras(model_path)
    if not hasattr(model, "inputs") or len(model.inputs) != 1:
        count = len(getattr(model, "inputs", []) or [])
        raise TinydeployError(f"{model_path} has {count} inputs; tinydeploy converts single-input models",
                              "wrap the model so it takes one input tensor")
    spec = model.inputs[0]
    shape = _batch1_shape(tuple(spec.shape), model_path)
    signature = [tf.TensorSpec(shape, spec.dtype, name=spec.name.split(":")[0])]
    try:
        with _native_output_captured():
            if loader == "keras":
                model.export(str(export_dir), format="tf_saved_model", input_signature=signature, verbose=False)
            else:
                _save_keras2_batch1(tf, model, signature, export_dir)
    except Exception as exc:
        raise TinydeployError(f"cannot trace {model_path} with a batch of 1: {_error_cause(exc)}",
                              "check that the model runs on one sample") from exc
    return loader


def _save_keras2_batch1(tf, model, signature: list, export_dir: Path) -> None:
    """A tf_keras model as a SavedModel whose serving signature takes one sample (outputs output_0, ...)."""

    @tf.function(input_signature=signature)
    def serve(x):
        outputs = model(x, training=False)
        if isinstance(outputs, dict):
            return outputs
        if isinstance(outputs, (list, tuple)):
            return {f"output_{i}": value for i, value in enumerate(outputs)}
        return {"output_0": outputs}

    module = tf.Module()
    module.model = model  # tracked, so the variables are saved along
    module.serve = serve
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": serve})


def _export_batch1_saved_model(tf, model_path: Path, export_dir: Path) -> None:
    try:
        with _native_output_captured():
            loaded = tf.saved_model.load(str(model_path))
    except Exception as exc:
        raise TinydeployError(f"{model_path} is not a loadable SavedModel: {_error_cause(exc)}",
                              "export it with tf.saved_model.save or model.export()") from exc
    signatures = getattr(loaded, "signatures", {}) or {}
    if "serving_default" not in signatures:
        raise TinydeployError(f"SavedModel {model_path} has no 'serving_default' signature",
                              "export it with a serving signature (model.export() writes one)")
    serving = signatures["serving_default"]
    _, inputs = serving.structured_input_signature
    if len(inputs) != 1:
        raise TinydeployError(f"SavedModel {model_path} has {len(inputs)} inputs; tinydeploy converts "
                              "single-input models", "wrap the model so it takes one input tensor")
    (name, spec), = inputs.items()
    shape = _batch1_shape(tuple(spec.shape.as_list()), model_path)

    class Batch1(tf.Module):
        def __init__(self):
            super().__init__()
            self.loaded = loaded  # tracked, so the variables are saved along

        @tf.function(input_signature=[tf.TensorSpec(shape, spec.dtype, name=name)])
        def serve(self, x):
            return serving(**{name: x})

    module = Batch1()
    with _native_output_captured():
        tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve})


def _batch1_shape(shape: tuple, model_path: Path) -> tuple[int, ...]:
    if not shape or shape[0] not in (None, 1):
        raise TinydeployError(f"{model_path} takes input of shape {shape}; the first axis must be the batch",
                              "export the model with a batch axis first")
    rest = shape[1:]
    if any(d is None for d in rest):
        raise TinydeployError(f"{model_path} has an input of unknown size {shape}",
                              "fix every dimension but the batch (microcontrollers need static shapes)")
    return (1, *(int(d) for d in rest))


class _FloatModel:
    """The batch-1 SavedModel's serving function: the float reference the int8 model is compared with."""

    def __init__(self, tf, export_dir: Path):
        loaded = tf.saved_model.load(str(export_dir))
        self._keep = loaded
        self.function = loaded.signatures["serving_default"]
        _, inputs = self.function.structured_input_signature
        (self.input_name, spec), = inputs.items()
        if spec.dtype != tf.float32:
            raise TinydeployError(f"the model's input is {spec.dtype.name}, not float32",
                                  "tinydeploy quantizes float32 inputs to int8")
        self.sample_shape = tuple(spec.shape.as_list()[1:])
        self.output_names = sorted(self.function.structured_outputs)
        self.tf = tf

    def has_loop(self) -> bool:
        """Whether the graph holds a while loop (a Keras LSTM, GRU or SimpleRNN without unroll=True), on which
        TensorFlow's int8 calibrator crashes."""
        graph = self.function.graph.as_graph_def()
        ops = {node.op for node in graph.node}
        for function in graph.library.function:
            ops.update(node.op for node in function.node_def)
        return bool(ops & {"While", "StatelessWhile"})

    def __call__(self, sample: np.ndarray) -> dict[str, np.ndarray]:
        result = self.function(**{self.input_name: self.tf.constant(sample[None])})
        return {name: value.numpy() for name, value in result.items()}


class _Int8Model:
    """TFLite's builtin kernels without XNNPACK: within 1 LSB of TFLM (XNNPACK is not). Takes float samples and
    gives float outputs: integer inputs are quantized and integer outputs dequantized with their parameters."""

    def __init__(self, interpreter_class, resolver_types, tflite: bytes):
        with warnings.catch_warnings(), _native_output_captured():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = interpreter_class(
                model_content=tflite,
                experimental_op_resolver_type=resolver_types.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self.runner = self.interpreter.get_signature_runner("serving_default")
        self.input_details = self.runner.get_input_details()
        self.output_details = self.runner.get_output_details()

    def __call__(self, input_name: str, sample: np.ndarray) -> dict[str, np.ndarray]:
        detail = self.input_details[input_name]
        dtype = np.dtype(detail["dtype"])
        value = sample[None].astype(np.float32)
        if dtype.kind in "iu":
            scale, zero = detail["quantization"]
            info = np.iinfo(dtype)
            value = np.clip(np.round(value / scale) + zero, info.min, info.max).astype(dtype)
        raw = self.runner(**{input_name: value})
        out = {}
        for name, result in raw.items():
            out_scale, out_zero = self.output_details[name]["quantization"]
            result = result.astype(np.float32)
            out[name] = (result - out_zero) * out_scale if out_scale else result
        return out


def _tf_int8_model(tf, tflite: bytes) -> _Int8Model:
    return _Int8Model(tf.lite.Interpreter, tf.lite.experimental.OpResolverType, tflite)


PARTLY_QUANTIZED_RETRIES = 3  # conversions again after one that left ops float


def _convert_saved_model(export_dir: Path, calib: np.ndarray, float_model: "_FloatModel") -> bytes:
    """The int8 .tflite of the batch-1 SavedModel, converted in a child process (tinydeploy.model.tf_quantize):
    TFLite's calibrator crashes its process on some graphs, and a crash is a one-line error here."""
    import signal
    import subprocess

    from tinydeploy.model.tf_quantize import REASON_PREFIX

    with tempfile.TemporaryDirectory(prefix="tinydeploy-quantize-") as tmp:
        work = Path(tmp)
        np.save(work / "calib.npy", calib)
        proc = subprocess.run([sys.executable, "-m", "tinydeploy.model.tf_quantize", str(export_dir),
                               str(work / "calib.npy"), str(work / "int8.tflite")], capture_output=True, text=True)
        if proc.returncode == 0:
            return (work / "int8.tflite").read_bytes()
    if proc.returncode < 0:
        try:
            name = signal.Signals(-proc.returncode).name
        except ValueError:
            name = f"signal {-proc.returncode}"
        if float_model.has_loop():  # read only after a crash: it serializes the graph
            raise TinydeployError(f"the TFLite converter crashed ({name}) while quantizing the model to int8: the "
                                  "model has a loop (a Keras LSTM, GRU or SimpleRNN layer without unroll=True), on "
                                  "which TensorFlow's int8 calibrator crashes", "build those layers with unroll=True")
        raise TinydeployError(f"the TFLite converter crashed ({name}) while quantizing the model to int8",
                              "find the layer it fails on by converting parts of the model, and replace it")
    lines = proc.stderr.strip().splitlines()
    reason = next((line[len(REASON_PREFIX):] for line in reversed(lines) if line.startswith(REASON_PREFIX)),
                  lines[-1].strip() if lines else f"exit status {proc.returncode}")
    raise TinydeployError(f"the TFLite converter failed: {reason}",
                          "the model may use an op that has no int8 TFLite kernel; replace that layer")


# ---------------------------------------------------------------------------------------------- .tflite quantization

# Classifications of a .tflite that ai-edge-quantizer turns into an int8 model (it keeps int8 weights that are
# already there, so dynamic-range models convert too).
TFLITE_QUANTIZABLE_KINDS = ("float", "hybrid", "mixed")
TFLITE_QUANTIZER = "ai-edge-quantizer"
SIGNATURE_KEY = "serving_default"


def import_tflite_quantizer():
    """(quantizer, recipe, LiteRT interpreter module) of Google's AI Edge quantizer, which quantizes a .tflite
    directly; a one-line error with the install command when it is absent."""
    try:
        with _native_output_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from ai_edge_litert import interpreter
            from ai_edge_quantizer import quantizer, recipe
    except ImportError as exc:
        raise TinydeployError(f"quantizing a .tflite needs {TFLITE_QUANTIZER} (Google's LiteRT quantizer), which is "
                              "not installed", INSTALL_HINT) from exc
    return quantizer, recipe, interpreter


BUFFER_ALIGN = 16  # the schema's force_align for buffer data, which TFLite's converter honours


class _AlignedBuffer:
    """A schema Buffer that packs its data inline and 16-byte aligned (the object API's own Pack aligns it to
    1 byte only)."""

    def __init__(self, data: bytes):
        self.data = data

    def Pack(self, builder):  # noqa: N802 (the schema's object API name)
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

        vector = None
        if self.data:
            builder.StartVector(1, len(self.data), BUFFER_ALIGN)
            builder.head = builder.head - len(self.data)
            builder.Bytes[builder.head:builder.head + len(self.data)] = self.data
            vector = builder.EndVector(len(self.data))
        schema.BufferStart(builder)
        if vector is not None:
            schema.BufferAddData(builder, vector)
        return schema.BufferEnd(builder)


def serialize_inline(data: bytes, change=None) -> bytes:
    """The .tflite `data` rewritten (after `change(model_object)`) with every buffer's data inline and 16-byte
    aligned: TFLM reads no buffer stored after the flatbuffer (ai-edge-quantizer writes models over 256 KB that
    way, and TFLM then computes garbage), and unaligned int32 data can fault on a Cortex-M."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    root = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    if change is not None:
        change(root)
    buffers = []
    for buffer in root.buffers or []:
        if buffer.offset > 1 and buffer.size:
            content = bytes(data[buffer.offset:buffer.offset + buffer.size])
        else:
            content = b"" if buffer.data is None else bytes(memoryview(buffer.data).cast("B"))
        buffers.append(_AlignedBuffer(content))
    root.buffers = buffers
    builder = flatbuffers.Builder(len(data) + 4096)
    builder.Finish(root.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def with_serving_signature(model: TfliteModel) -> bytes:
    """The model as the quantizer reads it: with a `serving_default` signature over the main graph's inputs and
    outputs (converters before TF 2.7 wrote none), and every operator code's builtin in the field today's
    readers use (older files hold it only in the deprecated one, which they would read as ADD)."""
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    def prepare(root) -> None:
        for code in root.operatorCodes or []:
            code.builtinCode = max(code.builtinCode, code.deprecatedBuiltinCode)
        if root.signatureDefs:
            return

        def tensor_map(prefix: str, position: int, index: int):
            entry = schema.TensorMapT()
            entry.name = f"{prefix}_{position}"
            entry.tensorIndex = int(index)
            return entry

        signature = schema.SignatureDefT()
        signature.signatureKey = SIGNATURE_KEY
        signature.subgraphIndex = 0
        signature.inputs = [tensor_map("input", n, i) for n, i in enumerate(model.inputs)]
        signature.outputs = [tensor_map("output", n, i) for n, i in enumerate(model.outputs)]
        root.signatureDefs = [signature]

    return serialize_inline(model.raw, prepare)


class _TfliteFloatModel:
    """A float .tflite's serving signature on LiteRT's builtin kernels: the reference the int8 model is compared
    with (the same interface as _FloatModel)."""

    def __init__(self, litert, tflite: bytes):
        with warnings.catch_warnings(), _native_output_captured():
            warnings.simplefilter("ignore")
            self.interpreter = litert.Interpreter(
                model_content=tflite,
                experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
            self.runner = self.interpreter.get_signature_runner(SIGNATURE_KEY)
        (self.input_name, detail), = self.runner.get_input_details().items()
        self.sample_shape = tuple(int(d) for d in detail["shape"][1:])
        self.output_names = sorted(self.runner.get_output_details())

    def __call__(self, sample: np.ndarray) -> dict[str, np.ndarray]:
        return {name: np.asarray(value) for name, value in
                self.runner(**{self.input_name: sample[None].astype(np.float32)}).items()}


def _quantize_with_aeq(quantizer, recipe, float_tflite: bytes, input_name: str, samples: np.ndarray) -> bytes:
    """Static int8 quantization (int8 weights, per channel where the op allows; int8 activations) by
    ai-edge-quantizer's own recipe, calibrated on each tensor's minimum and maximum over all samples, as
    TensorFlow's converter does (the quantizer's default, a moving average of per-sample ranges, shrinks
    ranges: a model with a one-number input calibrates it to a single point)."""
    from ai_edge_quantizer import calibrator
    from ai_edge_quantizer.utils import qsv_utils

    try:
        with _native_output_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            calibration = calibrator.CalibrationInterpreter(
                float_tflite, mode=calibrator.CalibrationMode.CALIBRATION_PRESERVE_ALL_TENSORS,
                qsv_update_func=qsv_utils.min_max_update)
            runner = calibration.get_signature_runner(SIGNATURE_KEY)
            for sample in samples:
                runner(**{input_name: sample[None].astype(np.float32)})
            engine = quantizer.Quantizer(float_tflite, recipe.static_wi8_ai8())
            quantized = engine.quantize(calibration.get_calibration_results(), enable_progress_report=False)
            return serialize_inline(bytes(quantized.quantized_model))
    except Exception as exc:  # the quantizer raises ValueError, RuntimeError, KeyError... with its reason
        raise TinydeployError(f"{TFLITE_QUANTIZER} failed: {_error_cause(exc)}",
                              "quantize the original Keras/SavedModel model instead (tinydeploy convert MODEL.keras)"
                              ) from exc


def _quantize_tflite(model_path: Path, model: TfliteModel, calib: str | None, validate: Path | None,
                     seed: int) -> ConversionResult:
    """A float, dynamic-range or partly quantized .tflite to int8 with ai-edge-quantizer (no TensorFlow)."""
    kind = model.classification
    what = f"{model_path} is a {KIND_TEXT[kind.kind]} model"
    if calib is None:
        raise TinydeployError(f"{what}; quantizing it to int8 needs calibration inputs",
                              "pass --calib samples.npy (a few hundred real inputs), or --calib random to try it out")
    if len(model.inputs) != 1:
        raise TinydeployError(f"{what} with {len(model.inputs)} inputs; tinydeploy calibrates single-input models",
                              "quantize it with ai-edge-quantizer directly, giving samples for every input")
    source = model.tensors[model.inputs[0]]
    if source.dtype != "float32" or not source.shape or source.shape[0] != 1:
        raise TinydeployError(f"{what} whose input is {source.dtype} {list(source.shape)}; tinydeploy calibrates "
                              "a float32 input with a batch of 1", "convert the original Keras/SavedModel model")
    calib_arrays = None if calib == RANDOM_CALIB else read_sample_arrays(Path(calib), "calibration")
    validate_arrays = None if validate is None else read_sample_arrays(Path(validate), "validation")
    found: list[str] = []
    started = time.perf_counter()
    quantizer, recipe, litert = import_tflite_quantizer()
    imported = time.perf_counter()
    float_tflite = with_serving_signature(model)
    float_model = _TfliteFloatModel(litert, float_tflite)
    calib_samples = _calibration_samples(calib, calib_arrays, float_model.sample_shape, float_model.input_name, seed,
                                         found)
    check_samples, check_source = _check_samples_for_agreement(validate, validate_arrays, float_model.sample_shape,
                                                               float_model.input_name, calib_samples)
    tflite = _quantize_with_aeq(quantizer, recipe, float_tflite, float_model.input_name, calib_samples)
    converted = parse_tflite(tflite)
    refuse_absurd_scales(converted)
    found.extend(model_warnings(converted))
    if kind.kind == "hybrid":
        found.append(f"the int8 weights of {', '.join(kind.hybrid_ops)} were kept as the file had them; only the "
                     "activations were calibrated")
    int8_model = _Int8Model(litert.Interpreter, litert.OpResolverType, tflite)
    agreement = _agreement(float_model, int8_model, check_samples, check_source, converted)
    return ConversionResult(
        tflite=tflite, source_format="tflite", passthrough=False,
        calibration=RANDOM_CALIB if calib == RANDOM_CALIB else str(calib),
        calibration_samples=len(calib_samples), agreement=agreement, warnings=found,
        tensorflow_import_s=imported - started, convert_s=time.perf_counter() - imported,
        quantizer=f"{TFLITE_QUANTIZER} {_package_version(TFLITE_QUANTIZER)}", loaded_with="tflite",
        source_kind=kind.kind)


def _package_version(name: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(version unknown)"


# ---------------------------------------------------------------------------------------------- checks


def check_quantized_tflite(model: TfliteModel, where: Path) -> None:
    """A .tflite that is not int8/int16x8 quantized and cannot be quantized here is refused precisely."""
    from tinydeploy.model.classify import classification_refusal

    refusal = classification_refusal(model)
    if refusal is not None:
        raise refusal


def refuse_absurd_scales(model: TfliteModel) -> None:
    """A converted model whose calibration took in an 'infinite' constant (a -inf or float32-limit padding or mask):
    that tensor's values all quantize to one level, and TFLite fails on some such models at prepare."""
    for op in model.operators:
        for index in op.outputs:
            tensor = model.tensors[index] if index >= 0 else None
            if tensor is None or tensor.quant is None or not tensor.quant.scales:
                continue
            scale = max(tensor.quant.scales)
            if scale > ABSURD_ACTIVATION_SCALE:
                raise TinydeployError(
                    f"the int8 model is unusable: {op.op} (op {op.index}) output '{tensor.name}' got scale "
                    f"{scale:.3g}, so its values quantize to one level (calibration took in a -inf or float32-limit "
                    "padding or mask)", "replace the layer that makes it, or mask with a finite value (e.g. -100)")


def model_warnings(model: TfliteModel) -> list[str]:
    """Things in a converted model that will hurt on a microcontroller."""
    found = []
    dynamic = sorted({op for op in model.op_names if op in DYNAMIC_BATCH_OPS})
    if "SHAPE" in dynamic:  # a STRIDED_SLICE or PACK of constant bounds is static; SHAPE reads one at run time
        found.append(f"the model has {', '.join(dynamic)} ops (dynamic shapes); they cost flash and arena")
    float_ops = sorted({op.op for op in model.operators if op.op != "DEQUANTIZE"
                        and any(i >= 0 and model.tensors[i].dtype in ("float32", "float16") for i in op.outputs)})
    if float_ops:
        found.append(f"ops stay float ({', '.join(float_ops)}): the TFLite converter did not quantize them, and "
                     "tinydeploy's engines do not run a partly quantized model; replace the layer that makes them")
    for op in model.operators:
        if op.op != "SOFTMAX" or not op.inputs:
            continue
        source = model.tensors[op.inputs[0]]
        scale = float(source.quant.scales[0]) if source.quant and len(source.quant.scales) else 0.0
        beta = float(op.options.get("beta", 1.0) or 1.0)
        if scale * beta <= SOFTMAX_MIN_SCALED_BETA:
            found.append(f"SOFTMAX (op {op.index}) gets input scale {scale:.3g}: the calibration saw almost "
                         "constant logits, and TFLM aborts on this model; calibrate on real data or train the model")
    return found


def _agreement(float_model: _FloatModel, int8_model: _Int8Model, samples: np.ndarray, source: str,
               tflite_model: TfliteModel) -> Agreement:
    floats: dict[str, list[np.ndarray]] = {name: [] for name in float_model.output_names}
    ints: dict[str, list[np.ndarray]] = {name: [] for name in float_model.output_names}
    for sample in samples:
        reference = float_model(sample)
        quantized = int8_model(float_model.input_name, sample)
        for name in float_model.output_names:
            floats[name].append(reference[name].reshape(-1))
            ints[name].append(quantized[name].reshape(-1))
    softmax_outputs = {op.outputs[0] for op in tflite_model.operators if op.op == "SOFTMAX"}
    results = []
    for name in float_model.output_names:
        want, got = np.stack(floats[name]), np.stack(ints[name])
        detail = int8_model.output_details[name]
        error = got - want
        classifier = want.shape[1] >= 2 and (detail["index"] in softmax_outputs or _looks_like_probabilities(want))
        top1 = float(np.mean(np.argmax(want, axis=1) == np.argmax(got, axis=1))) if classifier else None
        results.append(OutputAgreement(
            name=name, kind="classifier" if classifier else "values", rmse=float(np.sqrt(np.mean(error ** 2))),
            max_abs_error=float(np.max(np.abs(error))), lsb=float(detail["quantization"][0]), top1_agreement=top1))
    return Agreement(source=source, samples=len(samples), outputs=results)


def _looks_like_probabilities(values: np.ndarray) -> bool:
    return bool(np.all(values >= -1e-6) and np.all(values <= 1 + 1e-6)
                and np.allclose(values.sum(axis=1), 1.0, atol=1e-3))


# ---------------------------------------------------------------------------------------------- API


def _calibration_samples(calib: str, calib_arrays, sample_shape: tuple[int, ...], input_name: str, seed: int,
                         found: list[str]) -> np.ndarray:
    if calib == RANDOM_CALIB:
        rng = np.random.default_rng(seed)
        found.append("calibrating on random uniform [-1, 1] inputs: the int8 scales will be wrong for real "
                     "inputs; pass --calib with a few hundred real samples")
        return rng.uniform(-1.0, 1.0, (RANDOM_CALIB_SAMPLES, *sample_shape)).astype(np.float32)
    samples = load_samples(Path(calib), sample_shape, input_name, "calibration", calib_arrays)
    if len(samples) > MAX_CALIB_SAMPLES:
        found.append(f"calibrating on {MAX_CALIB_SAMPLES} of the {len(samples)} samples")
    samples = _spread(samples, MAX_CALIB_SAMPLES)
    if len(samples) < 10:
        found.append(f"only {len(samples)} calibration samples: the int8 ranges may clip real inputs")
    return samples


def _check_samples_for_agreement(validate: Path | None, validate_arrays, sample_shape: tuple[int, ...],
                                 input_name: str, calib_samples: np.ndarray) -> tuple[np.ndarray, str]:
    if validate is None:
        return calib_samples, "calibration"
    samples = load_samples(Path(validate), sample_shape, input_name, "validation", validate_arrays)
    return _spread(samples, MAX_VALIDATE_SAMPLES), "validation"


def convert_to_int8(model_path: Path, calib: str | None, validate: Path | None = None,
                    seed: int = 0) -> ConversionResult:
    """Convert a Keras/SavedModel model or a float .tflite to int8 TFLite (batch 1); pass an int8 or int16x8
    .tflite through.

    `calib` is a .npy/.npz path or "random" (which adds a warning); `validate` names samples to compare
    float and int8 on (default: the calibration samples)."""
    model_path = Path(model_path)
    source_format = detect_format(model_path)
    if source_format == "tflite":
        from tinydeploy.model.tflite import load_tflite

        model = load_tflite(model_path)
        if model.classification.kind in TFLITE_QUANTIZABLE_KINDS:
            return _quantize_tflite(model_path, model, calib, validate, seed)
        return _passthrough(model_path, model, calib, validate)
    if source_format in ("onnx", "pt2", "torch_function"):
        from tinydeploy.model.convert_onnx import convert_onnx_or_torch

        return convert_onnx_or_torch(model_path, source_format, calib, validate, seed)

    if source_format == "keras":
        _check_keras_archive(model_path)  # before the costly TensorFlow import
    elif source_format == "h5":
        _check_keras_h5(model_path)
    if calib is None:
        raise TinydeployError("converting to int8 needs calibration inputs",
                              "pass --calib samples.npy (a few hundred real inputs), or --calib random to try it out")
    # fail before the slow TensorFlow import; shapes are checked once the model is loaded
    calib_arrays = None if calib == RANDOM_CALIB else read_sample_arrays(Path(calib), "calibration")
    validate_arrays = None if validate is None else read_sample_arrays(Path(validate), "validation")
    found: list[str] = []
    started = time.perf_counter()
    tf = import_tensorflow()
    imported = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinydeploy-convert-") as tmp:
        export_dir = Path(tmp) / "batch1"
        if source_format == "saved_model":
            _export_batch1_saved_model(tf, model_path, export_dir)
            loaded_with = "tensorflow"
        else:
            loaded_with = _export_batch1_keras(tf, model_path, export_dir)
        with _native_output_captured():
            float_model = _FloatModel(tf, export_dir)
        calib_samples = _calibration_samples(calib, calib_arrays, float_model.sample_shape, float_model.input_name,
                                             seed, found)
        check_samples, check_source = _check_samples_for_agreement(validate, validate_arrays, float_model.sample_shape,
                                                                   float_model.input_name, calib_samples)
        tflite = _convert_saved_model(export_dir, calib_samples, float_model)
        converted = parse_tflite(tflite)
        # TensorFlow 2.21's quantizer leaves some ops of the same graph float on some runs and not on others
        # (the SPLIT of an unrolled Keras LSTM's gates, about one run in three): convert again before giving up.
        for _ in range(PARTLY_QUANTIZED_RETRIES):
            if converted.classification.kind != "mixed":
                break
            tflite = _convert_saved_model(export_dir, calib_samples, float_model)
            converted = parse_tflite(tflite)
        refuse_absurd_scales(converted)
        found.extend(model_warnings(converted))
        int8_model = _tf_int8_model(tf, tflite)
        agreement = _agreement(float_model, int8_model, check_samples, check_source, converted)
    return ConversionResult(
        tflite=tflite, source_format=source_format, passthrough=False,
        calibration=RANDOM_CALIB if calib == RANDOM_CALIB else str(calib),
        calibration_samples=len(calib_samples), agreement=agreement, warnings=found,
        tensorflow_import_s=imported - started, convert_s=time.perf_counter() - imported,
        quantizer="TensorFlow Lite converter", loaded_with=loaded_with)


def _passthrough(model_path: Path, model: TfliteModel, calib: str | None, validate: Path | None) -> ConversionResult:
    check_quantized_tflite(model, model_path)
    found = model_warnings(model)
    kind = model.classification.kind
    if not model.classification.is_quantized:
        found.append(f"the model has no quantized layers ({KIND_TEXT[kind]}): copied unchanged")
    if calib is not None:
        found.append(f"the model is already {kind}: --calib is ignored")
    if validate is not None:
        found.append(f"the model is already {kind} and there is no float model to compare with: --validate is "
                     "ignored")
    return ConversionResult(tflite=model.raw, source_format="tflite", passthrough=True, calibration=None,
                            calibration_samples=0, agreement=None, warnings=found, loaded_with="tflite",
                            source_kind=kind)


def ensure_int8_tflite(model_path: Path, calib: str | None = None, validate: Path | None = None,
                       warn: Callable[[str], None] | None = None) -> bytes:
    """The quantized .tflite bytes for any model tinydeploy accepts (a quantized .tflite passes through)."""
    result = convert_to_int8(Path(model_path), calib, validate)
    if warn is not None:
        for message in result.warnings:
            warn(message)
    return result.tflite


# ---------------------------------------------------------------------------------------------- CLI


def run_convert_command(model_path: Path, output: Path, calib: str | None, validate: Path | None,
                        force: bool, as_json: bool) -> None:
    from rich.console import Console

    check_output_path(output, force)
    if model_path.resolve() == output.resolve():
        raise TinydeployError(f"output {output} is the input model", "choose another output path")
    result = convert_to_int8(model_path, calib, validate)
    try:
        atomic_write_bytes(output, result.tflite)
    except OSError as exc:  # e.g. a directory that accepts no new files although access() said yes
        raise TinydeployError(f"cannot write {output}: {exc.strerror}", "choose another output path") from exc

    errors = Console(stderr=True)
    for message in result.warnings:
        errors.print(f"[yellow]warning:[/] {message}", highlight=False, soft_wrap=True)
    if as_json:
        print(json.dumps({"model": str(model_path), "output": str(output), **result.to_json()}, indent=2))
    else:
        render_conversion(result, model_path, output, Console())


def render_conversion(result: ConversionResult, model_path: Path, output: Path, console) -> None:
    from rich.table import Table

    model = result.model
    table = Table(title=f"{model_path} -> {output}", title_justify="left", show_header=False)
    table.add_column("what", style="bold")
    table.add_column("value")
    for index in model.inputs:
        t = model.tensors[index]
        table.add_row("input", f"{t.dtype} {list(t.shape)} {_quant_text(t)}")
    for index in model.outputs:
        t = model.tensors[index]
        table.add_row("output", f"{t.dtype} {list(t.shape)} {_quant_text(t)}")
    counts = ", ".join(f"{op} x{model.op_names.count(op)}" for op in model.distinct_ops)
    table.add_row("ops", f"{len(model.operators)} ({counts})")
    table.add_row("file size", f"{len(result.tflite):,} B (weights {model.weights_bytes:,} B)")
    table.add_row("model", model.classification.describe())
    if result.passthrough:
        table.add_row("conversion", f"already {result.source_kind}: copied unchanged")
    else:
        source = ("random inputs (uniform -1..1)" if result.calibration == RANDOM_CALIB
                  else f"samples from {result.calibration}")
        if result.source_kind:
            table.add_row("source", f"a {KIND_TEXT[result.source_kind]} .tflite")
        elif result.loaded_with == "tf_keras":
            table.add_row("source", "a Keras 2 model (read with tf_keras)")
        if result.quantizer:
            table.add_row("quantizer", result.quantizer)
        table.add_row("calibration", f"{result.calibration_samples} {source}")
        package = result.quantizer.split()[0] if result.quantizer.startswith("ai-edge") else "TensorFlow"
        table.add_row("time", f"{result.convert_s:.1f} s (+ {result.tensorflow_import_s:.1f} s importing {package})")
    if result.source_info:
        from tinydeploy.model.convert_onnx import describe_source

        for label, text in describe_source(result.source_info):
            table.add_row(label, text)
    agreement = result.agreement
    if agreement is not None:
        table.add_section()
        table.add_row("int8 vs float", f"on {agreement.samples} {agreement.source} samples")
        for out in agreement.outputs:
            if out.top1_agreement is not None:
                style = "green" if out.top1_agreement >= 0.95 else "red"
                table.add_row(f"  {out.name} top-1", f"[{style}]{100 * out.top1_agreement:.1f}% agree[/]")
            step = f"; 1 LSB = {out.lsb:.4g}" if out.lsb else ""
            table.add_row(f"  {out.name} RMSE", f"{out.rmse:.4g} (max {out.max_abs_error:.4g}{step})")
    console.print(table)


def _quant_text(tensor) -> str:
    q = tensor.quant
    if q is None or not len(q.scales):
        return ""
    return f"scale {float(q.scales[0]):.4g}, zero point {int(q.zero_points[0])}"
