"""ONNX (and, through torch.onnx, PyTorch) models to full-int8 TFLite.

Route: onnx2tf (PyPI) turns the ONNX graph into a TensorFlow model with channels last (the layout TFLite's
kernels and TFLM use), that model is saved as a batch-1 SavedModel, and `convert_to_int8` quantizes it exactly
as it does Keras models (same representative dataset, int8 input and output, int8-vs-float agreement).
Before that, the TensorFlow model is run beside the original (ONNX Runtime, or PyTorch itself) on the same
inputs: that tells which axes onnx2tf moved and how far the float models are apart.

Layout: a 4-D input (N, C, H, W) becomes (N, H, W, C) in the int8 model (3-D NCW -> NWC, 5-D NCDHW -> NDHWC);
outputs of rank >= 3 may move their channels last too (the report says). Calibration and validation data may be
in the source layout (as for PyTorch) or already channels last; when both read the same (C == H == W ...), the
source layout is assumed.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from tinydeploy.errors import TinydeployError

FLOAT_CHECK_SAMPLES = 8
# The TF model's outputs may differ from the source's by float rounding; beyond this share of the output range
# the conversion itself changed the model, which the user must hear about.
FLOAT_CHECK_RELATIVE_TOLERANCE = 1e-3
# onnx2tf runs its own ONNX-vs-TF check on 3-channel image inputs with sample images it downloads into the working
# directory unless a file of this name is there; offline the download fails, so it is given local samples.
ONNX2TF_SAMPLE_FILE = "calibration_image_sample_data_20x128x128x3_float32.npy"
ONNX2TF_SAMPLE_SHAPE = (20, 128, 128, 3)
LAYOUT_NAMES = {3: ("NCW", "NWC"), 4: ("NCHW", "NHWC"), 5: ("NCDHW", "NDHWC")}


def onnx_install_hint() -> str:
    """onnx2tf needs tf-keras of TensorFlow's own version; tf-keras asks for the `tensorflow` package by name,
    which would install a second TensorFlow over tensorflow-cpu, so it is installed without dependencies."""
    try:
        major_minor = ".".join(metadata.version("tensorflow-cpu").split(".")[:2])
    except metadata.PackageNotFoundError:
        try:
            major_minor = ".".join(metadata.version("tensorflow").split(".")[:2])
        except metadata.PackageNotFoundError:
            major_minor = "2.21"
    return f"pip install 'tinydeploy[onnx]' && pip install --no-deps 'tf-keras=={major_minor}.*'"


@dataclass
class SourceModel:
    """An ONNX graph to convert, with the float model it came from to check the conversion against."""

    onnx_model: object  # onnx.ModelProto
    format: str  # "onnx", "pt2" or "torch_function"
    description: str  # e.g. "ONNX file net.onnx"
    input_name: str
    input_shape: tuple[int, ...]  # batch 1, in the source layout
    reference: Callable[[np.ndarray], list[np.ndarray]]  # float outputs of the original for one batch-1 input
    reference_name: str  # "ONNX Runtime 1.32.0", "PyTorch 2.13.0"
    route: list[str]  # the converters, in order, for the report
    stage_seconds: dict[str, float]
    import_seconds: float = 0.0


# ---------------------------------------------------------------------------------------------- imports


def import_onnx() -> object:
    try:
        import onnx
    except ImportError as exc:
        raise TinydeployError("converting ONNX models needs the onnx package, which is not installed",
                              onnx_install_hint()) from exc
    return onnx


def _import_onnx2tf():
    """onnx2tf with its process-wide side effects undone: it sets the recursion limit to 2^31 (a deep recursion
    would then crash instead of raising), switches `tf.keras` to Keras 2 for the whole process and silences all
    warnings."""
    from tinydeploy.model.convert import _native_output_captured

    import importlib.util

    missing = [module for module in ("onnx", "onnx2tf", "tf_keras", "onnx_graphsurgeon", "onnxruntime", "sng4onnx",
                                     "psutil", "ai_edge_litert") if importlib.util.find_spec(module) is None]
    if missing:
        raise TinydeployError(f"converting ONNX and PyTorch models needs {', '.join(missing)}, not installed",
                              onnx_install_hint())
    recursion_limit = sys.getrecursionlimit()
    legacy_keras = os.environ.get("TF_USE_LEGACY_KERAS")
    try:
        with warnings.catch_warnings(), _native_output_captured():
            import onnx2tf
    except Exception as exc:  # an incompatible onnx2tf/TensorFlow pair fails at import
        raise TinydeployError(f"onnx2tf does not import: {type(exc).__name__}: {str(exc).splitlines()[0][:200]}",
                              onnx_install_hint()) from exc
    finally:
        sys.setrecursionlimit(recursion_limit)
        if legacy_keras is None:
            os.environ.pop("TF_USE_LEGACY_KERAS", None)
        else:
            os.environ["TF_USE_LEGACY_KERAS"] = legacy_keras
    return onnx2tf


# ---------------------------------------------------------------------------------------------- ONNX files


def load_onnx_source(model_path: Path) -> SourceModel:
    """An ONNX file (external data beside it is read too), checked for one static float32 input."""
    from tinydeploy.fsutil import check_input_file

    check_input_file(model_path, "model", "give an .onnx file")
    onnx = import_onnx()
    started = time.perf_counter()
    try:
        model = onnx.load(str(model_path))
    except Exception as exc:  # protobuf's DecodeError, missing external data (FileNotFoundError), ...
        raise TinydeployError(f"{model_path} is not a readable ONNX model: {_first_line(exc)}",
                              "export it again (torch.onnx.export, tf2onnx); keep its .data file beside it") from exc
    if not len(model.graph.node):
        raise TinydeployError(f"{model_path} is not an ONNX model (no graph nodes)", "give an exported .onnx file")
    name, shape = onnx_single_input(model, model_path)
    reference_name = "ONNX Runtime"
    with contextlib.suppress(metadata.PackageNotFoundError):
        reference_name += " " + metadata.version("onnxruntime")
    return SourceModel(model, "onnx", f"ONNX file {model_path}", name, shape, _onnxruntime_reference(model, name),
                       reference_name, ["onnx2tf", "TFLite converter"],
                       {"load": time.perf_counter() - started})


def onnx_single_input(model, where) -> tuple[str, tuple[int, ...]]:
    """The graph's one real input (initializers listed as inputs by old exporters are not inputs) and its shape
    with a batch of 1."""
    initializers = {init.name for init in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in initializers]
    if len(inputs) != 1:
        raise TinydeployError(f"{where} has {len(inputs)} inputs; tinydeploy converts single-input models",
                              "export a model that takes one input tensor")
    value = inputs[0]
    tensor_type = value.type.tensor_type
    if tensor_type.elem_type != 1:  # TensorProto.FLOAT
        raise TinydeployError(f"{where}: input '{value.name}' is not float32 (ONNX element type "
                              f"{tensor_type.elem_type})", "export the model with a float32 input")
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor_type.shape.dim]
    if not dims:
        raise TinydeployError(f"{where}: input '{value.name}' has no shape", "export the model with a fixed input "
                              "shape (an example input of batch 1)")
    if dims[0] not in (None, 1):
        raise TinydeployError(f"{where}: input '{value.name}' has shape {dims} with a batch of {dims[0]}",
                              "export the model with an example input of batch 1 (or a dynamic batch)")
    if any(d is None or d <= 0 for d in dims[1:]):
        raise TinydeployError(f"{where}: input '{value.name}' has dimensions of unknown size {dims}",
                              "fix every dimension but the batch (microcontrollers need static shapes)")
    return value.name, (1, *dims[1:])


def _onnxruntime_reference(model, input_name: str) -> Callable[[np.ndarray], list[np.ndarray]]:
    session = None

    def run(sample: np.ndarray) -> list[np.ndarray]:
        nonlocal session
        if session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.log_severity_level = 3
            session = onnxruntime.InferenceSession(model.SerializeToString(), options,
                                                   providers=["CPUExecutionProvider"])
        return [np.asarray(out) for out in session.run(None, {input_name: sample.astype(np.float32)})]

    return run


# ---------------------------------------------------------------------------------------------- conversion


def convert_onnx_or_torch(model_path: Path, source_format: str, calib: str | None, validate: Path | None,
                          seed: int = 0):
    """`convert_to_int8` for an .onnx file, a .pt2 file or a PyTorch `module:function`."""
    from tinydeploy.model.convert import RANDOM_CALIB, read_sample_arrays

    if calib is None:
        raise TinydeployError("converting to int8 needs calibration inputs",
                              "pass --calib samples.npy (a few hundred real inputs), or --calib random to try it out")
    # bad data fails before PyTorch and TensorFlow are imported (seconds); shapes are checked once the model is known
    calib_arrays = None if calib == RANDOM_CALIB else read_sample_arrays(Path(calib), "calibration")
    validate_arrays = None if validate is None else read_sample_arrays(Path(validate), "validation")
    if source_format == "onnx":
        source = load_onnx_source(model_path)
    else:
        from tinydeploy.model.convert_torch import load_torch_source

        source = load_torch_source(model_path)
    return convert_source_to_int8(source, calib, validate, seed, calib_arrays, validate_arrays)


def convert_source_to_int8(source: SourceModel, calib: str, validate: Path | None, seed: int = 0,
                           calib_arrays: dict | None = None, validate_arrays: dict | None = None):
    """The ConversionResult of `convert_to_int8` for an ONNX graph, with where it came from in `source_info`."""
    from tinydeploy.model.convert import RANDOM_CALIB, convert_to_int8, import_tensorflow, read_sample_arrays

    if calib != RANDOM_CALIB and calib_arrays is None:
        calib_arrays = read_sample_arrays(Path(calib), "calibration")
    if validate is not None and validate_arrays is None:
        validate_arrays = read_sample_arrays(Path(validate), "validation")
    started = time.perf_counter()
    tf = import_tensorflow()
    onnx2tf = _import_onnx2tf()
    import_seconds = source.import_seconds + time.perf_counter() - started

    stages = dict(source.stage_seconds)
    with tempfile.TemporaryDirectory(prefix="tinydeploy-onnx-") as tmp_name:
        tmp = Path(tmp_name)
        started = time.perf_counter()
        if calib == RANDOM_CALIB:
            check_samples = np.random.default_rng(seed).uniform(-1.0, 1.0, (FLOAT_CHECK_SAMPLES,
                                                                            *source.input_shape[1:]))
        else:
            check_samples = None  # taken from the calibration data once its layout is known
        stages["onnx2tf"] = stages["float_check"] = 0.0
        graphs = _graphs_for_onnx2tf(source.onnx_model)
        for attempt, graph in enumerate(graphs):
            started = time.perf_counter()
            try:
                keras_model = _run_onnx2tf(onnx2tf, source, graph, tmp / f"onnx2tf{attempt}")
            except TinydeployError:
                if attempt + 1 == len(graphs):
                    raise
                continue
            tf_shape = tuple(int(d) if d is not None else 1 for d in keras_model.inputs[0].shape)
            stages["onnx2tf"] += time.perf_counter() - started
            started = time.perf_counter()
            layout = _match_layouts(source, keras_model, tf_shape, calib, calib_arrays, check_samples)
            stages["float_check"] += time.perf_counter() - started
            if not layout.warnings:
                break  # else onnx2tf may have moved the axes of a Slice where it gets a Gather right

        export_dir = tmp / "saved_model"
        _save_batch1(tf, keras_model, tf_shape, export_dir)
        calib_arg = calib
        if calib != RANDOM_CALIB:
            calib_arg = str(_write_channels_last(layout, source.input_name, calib_arrays, Path(calib), "calibration",
                                                  tmp / "calib.npy"))
        validate_arg = None
        if validate is not None:
            validate_arg = _write_channels_last(layout, source.input_name, validate_arrays, Path(validate),
                                                "validation", tmp / "validate.npy")
        started = time.perf_counter()
        result = convert_to_int8(export_dir, calib_arg, validate_arg, seed)
        stages["tflite"] = time.perf_counter() - started

    found = list(result.warnings)
    found.extend(layout.warnings)
    info = {
        "source": source.description,
        "route": source.route,
        "versions": _versions(source),
        "input_layout": layout.input_json(),
        "output_layouts": layout.outputs_json(),
        "float_check": layout.check_json(),
        "stage_seconds": {k: round(v, 3) for k, v in stages.items()},
    }
    return replace(result, source_format=source.format, calibration=calib, warnings=found, source_info=info,
                   tensorflow_import_s=import_seconds, convert_s=sum(stages.values()))


@contextlib.contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def _run_onnx2tf(onnx2tf, source: SourceModel, graph, work: Path):
    """onnx2tf's Keras model of the graph (batch 1). It runs in a scratch directory: it writes there and reads its
    sample images from there (written here from a fixed seed, so nothing is downloaded)."""
    from tinydeploy.model.convert import _native_output_captured

    work.mkdir()
    samples = np.random.default_rng(0).uniform(0.0, 1.0, ONNX2TF_SAMPLE_SHAPE).astype(np.float32)
    np.save(work / ONNX2TF_SAMPLE_FILE, samples)
    captured: list[str] = []
    recursion_limit = sys.getrecursionlimit()
    try:
        with _working_directory(work), warnings.catch_warnings(), _native_output_captured() as captured:
            warnings.simplefilter("ignore")
            model = onnx2tf.convert(onnx_graph=graph,
                                    output_folder_path=str(work / "out"),
                                    batch_size=1, not_use_onnxsim=True, disable_model_save=True, non_verbose=True,
                                    disable_group_convolution=True)
    except (Exception, SystemExit) as exc:  # onnx2tf calls sys.exit(1) on many errors after printing them
        reason, hint = _onnx2tf_failure(captured, exc, source.onnx_model)
        raise TinydeployError(f"onnx2tf cannot convert {source.description}: {reason[:300]}", hint) from exc
    finally:
        sys.setrecursionlimit(recursion_limit)
    if model is None or len(model.inputs) != 1:
        raise TinydeployError(f"onnx2tf gave no single-input model for {source.description}",
                              "export a model that takes one input tensor")
    return model


def _graphs_for_onnx2tf(model) -> list:
    """The graph with the nodes onnx2tf would make into ops that quantize or run badly written another way, and
    then (when it differs) the same without the Gathers written as slices, to try in that order."""
    import onnx

    if not any(node.op_type in ("MaxPool", "Gather") for node in model.graph.node):
        return [model]
    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - without shapes nothing is rewritten
        return [model]
    shapes = {}
    for value in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and all(d.HasField("dim_value") for d in dims[1:]):
            shapes[value.name] = [d.dim_value for d in dims]
    pools = _maxpool_pads_as_edges(model, shapes)
    selects = _selects_as_slices(pools, shapes)
    return [selects] if selects is pools else [selects, pools]


def _selects_as_slices(model, shapes):
    """Gather of one constant index (PyTorch's x[:, t], unbind, chunk of a packed projection) as Slice + Squeeze:
    onnx2tf makes it a GATHER, which the native engine has no kernel for; STRIDED_SLICE and RESHAPE it has."""
    import onnx
    from onnx import helper, numpy_helper

    constants = {init.name: init for init in model.graph.initializer}
    constants.update({node.output[0]: node.attribute[0].t for node in model.graph.node if node.op_type == "Constant"
                      and len(node.attribute) == 1 and node.attribute[0].name == "value"})
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    nodes, changed = [], False
    for node in rewritten.graph.node:
        index = constants.get(node.input[1]) if node.op_type == "Gather" and len(node.input) == 2 else None
        shape = shapes.get(node.input[0])
        if index is None or shape is None or list(index.dims) or index.data_type not in (6, 7):  # INT32, INT64
            nodes.append(node)
            continue
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        axis += len(shape) if axis < 0 else 0
        position = int(numpy_helper.to_array(index))
        position += shape[axis] if position < 0 else 0
        if not 0 <= axis < len(shape) or not 0 <= position < shape[axis]:
            nodes.append(node)  # a dynamic axis, or an index out of range (which ONNX Runtime reports)
            continue
        changed = True
        stem = f"{node.name or node.output[0]}_slice"
        consts = [numpy_helper.from_array(np.array([value], dtype=np.int64), f"{stem}_{key}")
                  for key, value in (("starts", position), ("ends", position + 1), ("axes", axis))]
        rewritten.graph.initializer.extend(consts)
        nodes.append(helper.make_node("Slice", [node.input[0], *(c.name for c in consts)], [f"{stem}_out"],
                                      name=stem))
        kept = numpy_helper.from_array(np.array(shape[:axis] + shape[axis + 1:], dtype=np.int64), f"{stem}_shape")
        rewritten.graph.initializer.append(kept)
        nodes.append(helper.make_node("Reshape", [f"{stem}_out", kept.name], list(node.output),
                                      name=node.name or f"{stem}_reshape"))
    if not changed:
        return model
    del rewritten.graph.node[:]
    rewritten.graph.node.extend(nodes)
    return rewritten


def _maxpool_pads_as_edges(model, shapes):
    """The graph with every MaxPool whose padding TensorFlow's SAME does not give (explicit pads, ceil_mode) padded
    beforehand with copies of its edge elements (Slice + Concat) and pooled without padding. onnx2tf pads those
    with float32's lowest value, which calibration takes into the range: the tensor's int8 scale becomes ~1e36 and
    every value quantizes to one level. Every window that reaches the padding holds the edge element it copies
    (PyTorch keeps pads <= kernel / 2 and starts the last ceil_mode window inside the input), so the maxima are
    unchanged. Pools without a known shape or with dilations are left to onnx2tf."""
    import onnx
    from onnx import helper, numpy_helper

    if not any(node.op_type == "MaxPool" for node in model.graph.node):
        return model
    rewritten = onnx.ModelProto()
    rewritten.CopyFrom(model)
    nodes, changed = [], False
    for node in rewritten.graph.node:
        plan = _maxpool_edge_plan(node, shapes) if node.op_type == "MaxPool" else None
        if plan is None:
            nodes.append(node)
            continue
        changed = True
        source = node.input[0]
        for axis, (before, after) in plan.items():
            if not before and not after:
                continue
            stem = f"{node.name or node.output[0]}_edge{axis}"
            size = shapes[node.input[0]][axis]
            for side, count, start in (("first", before, 0), ("last", after, size - 1)):
                if not count:
                    continue
                consts = [numpy_helper.from_array(np.array([v], dtype=np.int64), f"{stem}_{side}_{key}")
                          for key, v in (("starts", start), ("ends", start + 1), ("axes", axis))]
                rewritten.graph.initializer.extend(consts)
                nodes.append(helper.make_node("Slice", [source, *(c.name for c in consts)], [f"{stem}_{side}"],
                                              name=f"{stem}_{side}_slice"))
            inputs = [f"{stem}_first"] * before + [source] + [f"{stem}_last"] * after
            nodes.append(helper.make_node("Concat", inputs, [f"{stem}_padded"], name=f"{stem}_concat", axis=axis))
            source = f"{stem}_padded"
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        attrs.update(pads=[0] * (2 * len(attrs["kernel_shape"])), ceil_mode=0, auto_pad="NOTSET")
        nodes.append(helper.make_node("MaxPool", [source], list(node.output), name=node.name, **attrs))
    if not changed:
        return model
    del rewritten.graph.node[:]
    rewritten.graph.node.extend(nodes)
    return rewritten


def _maxpool_edge_plan(node, shapes) -> dict[int, tuple[int, int]] | None:
    """{axis: (elements before, after)} to pad a MaxPool's input with, or None to leave the node to onnx2tf."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    kernel = list(attrs.get("kernel_shape", []))
    spatial = len(kernel)
    if (len(node.output) != 1 or not spatial or attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")
            or any(d != 1 for d in attrs.get("dilations", [1] * spatial)) or attrs.get("storage_order", 0)):
        return None
    pads = list(attrs.get("pads", [0] * 2 * spatial))
    strides = list(attrs.get("strides", [1] * spatial))
    in_shape, out_shape = shapes.get(node.input[0]), shapes.get(node.output[0])
    if in_shape is None or out_shape is None or len(in_shape) != spatial + 2 or len(out_shape) != spatial + 2:
        return None
    plan, same = {}, True
    for i in range(spatial):
        size, k, stride, out = in_shape[2 + i], kernel[i], strides[i], out_shape[2 + i]
        before = pads[i]
        after = max((out - 1) * stride + k - size - before, 0)  # the padding the last window reaches
        if before > k - 1 or (out - 1) * stride - before > size - 1:
            return None  # a window of padding only: no edge element to copy
        same_out = -(-size // stride)
        same_total = max((same_out - 1) * stride + k - size, 0)
        same = same and out == same_out and [pads[i], pads[spatial + i]] == [same_total // 2,
                                                                             same_total - same_total // 2]
        plan[2 + i] = (before, after)
    if not any(pads) and not attrs.get("ceil_mode", 0):
        return None  # no padding
    if any(pads) and same:
        return None  # onnx2tf pools it with SAME padding, which never reads the padding
    return plan


# onnx2tf's advice after any failure (its command-line options), which says nothing about the failure itself
ONNX2TF_BOILERPLATE = ("The trace log is below", "input_onnx_file_path:", "onnx_op_name:", "Read this and deal with it",
                       "Alternatively, if the input OP", "If the input OP of ONNX", "Also, for models that include")
RECURRENT_ONNX_OPS = {"LSTM", "GRU", "RNN"}


def _onnx2tf_failure(lines: list[str], exc: BaseException, model) -> tuple[str, str]:
    """(what failed, a way that may work) from onnx2tf's printed log: the ONNX node it failed on and its error."""
    import re

    plain = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in lines]
    node_name = next((line.split("onnx_op_name:", 1)[1].strip() for line in reversed(plain)
                      if "onnx_op_name:" in line), "")
    errors = [line for line in plain if (line.startswith("ERROR") or "Error" in line)
              and not any(text in line for text in ONNX2TF_BOILERPLATE)]
    if not isinstance(exc, SystemExit) and str(exc).strip():
        detail = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    else:
        detail = errors[-1] if errors else _first_line(exc)
    detail = re.sub(r"^ERROR:\s*", "", re.sub(r"\{\{[^}]*\}\}\s*", "", detail))[:240]  # TF's op prefix
    op_type = next((node.op_type for node in model.graph.node if node.name == node_name), "")
    where = f"it fails on ONNX node {node_name} ({op_type}): " if node_name and op_type else ""
    if op_type in RECURRENT_ONNX_OPS:
        return (where + detail, f"onnx2tf does not convert this {op_type}; in the PyTorch model, write the "
                f"recurrence with nn.{op_type}Cell in a loop over the time steps (torch.export unrolls it into "
                "ops that convert)")
    return where + detail, ("the model may use an ONNX op onnx2tf does not support; replace that layer, or export "
                            "with another opset")


def _save_batch1(tf, keras_model, shape: tuple[int, ...], export_dir: Path) -> None:
    """A SavedModel with one `serving_default` signature taking exactly the batch-1 shape. Keras 2's ExportArchive
    (as onnx2tf saves) also keeps the constants onnx2tf's layers capture outside the model's own weights."""
    import tf_keras

    from tinydeploy.model.convert import _native_output_captured

    name = keras_model.inputs[0].name.split(":")[0]
    archive = tf_keras.export.ExportArchive()
    archive.track(keras_model)

    def serve(x):
        outputs = keras_model(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return {f"output_{i}": out for i, out in enumerate(outputs)}

    try:
        with _native_output_captured(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            archive.add_endpoint(name="serving_default", fn=serve,
                                 input_signature=[tf.TensorSpec(shape, tf.float32, name=name)])
            archive.write_out(str(export_dir))
    except Exception as exc:
        raise TinydeployError(f"cannot save onnx2tf's TensorFlow model: {_first_line(exc)}",
                              "report it with the model") from exc


# ---------------------------------------------------------------------------------------------- layouts


def channels_last(rank: int) -> tuple[int, ...]:
    """The axis order onnx2tf gives a channels-first tensor: (0, 2, ..., rank-1, 1)."""
    return (0, *range(2, rank), 1) if rank >= 3 else tuple(range(rank))


def _candidate_perms(source_shape: tuple[int, ...], target_shape: tuple[int, ...]) -> list[tuple[int, ...]]:
    rank = len(source_shape)
    if rank != len(target_shape):
        return []
    perms = []
    for perm in (tuple(range(rank)), channels_last(rank)):
        if perm not in perms and tuple(source_shape[i] for i in perm) == tuple(target_shape):
            perms.append(perm)
    return perms


def layout_name(rank: int, perm: tuple[int, ...] | None, source: bool) -> str:
    names = LAYOUT_NAMES.get(rank)
    if names is None or perm is None:
        return "as in the source"
    if source:
        return names[0]
    return names[1] if perm == channels_last(rank) and perm != tuple(range(rank)) else names[0]


@dataclass
class OutputMatch:
    source_shape: tuple[int, ...]
    int8_shape: tuple[int, ...]
    perm: tuple[int, ...] | None
    max_abs_error: float | None
    max_abs_output: float | None


@dataclass
class LayoutMatch:
    input_perm: tuple[int, ...]
    source_shape: tuple[int, ...]
    int8_shape: tuple[int, ...]
    outputs: list[OutputMatch]
    samples: int
    reference_name: str
    warnings: list[str]

    def input_json(self) -> dict:
        rank = len(self.source_shape)
        return {"source": layout_name(rank, self.input_perm, True), "int8_model": layout_name(rank, self.input_perm,
                                                                                              False),
                "source_shape": list(self.source_shape), "int8_shape": list(self.int8_shape),
                "permutation": list(self.input_perm)}

    def outputs_json(self) -> list[dict]:
        return [{"source_shape": list(o.source_shape), "int8_shape": list(o.int8_shape),
                 "permutation": list(o.perm) if o.perm is not None else None} for o in self.outputs]

    def check_json(self) -> dict:
        errors = [o.max_abs_error for o in self.outputs if o.max_abs_error is not None]
        ranges = [o.max_abs_output for o in self.outputs if o.max_abs_output is not None]
        return {"reference": self.reference_name, "samples": self.samples,
                "max_abs_error": max(errors) if errors else None,
                "max_abs_output": max(ranges) if ranges else None}


def _model_outputs(keras_model, sample: np.ndarray) -> list[np.ndarray]:
    outputs = keras_model(sample, training=False)
    outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
    return [np.asarray(out) for out in outputs]


def _match_layouts(source: SourceModel, keras_model, tf_shape: tuple[int, ...], calib: str,
                   calib_arrays: dict | None, check_samples: np.ndarray | None) -> LayoutMatch:
    """Which axes onnx2tf moved (input and outputs), decided by running both float models on the same inputs."""
    perms = _candidate_perms(source.input_shape, tf_shape)
    if not perms:
        raise TinydeployError(f"onnx2tf changed the input of {source.description} from {list(source.input_shape)} "
                              f"to {list(tf_shape)}, not a layout tinydeploy knows", "report it with the model")
    if check_samples is None:
        check_samples = _source_layout_samples(source, tf_shape, calib_arrays, Path(calib), "calibration")
    check_samples = _evenly(check_samples, FLOAT_CHECK_SAMPLES).astype(np.float32)
    try:
        references = [source.reference(sample[None]) for sample in check_samples]
    except TinydeployError:
        raise
    except Exception as exc:
        raise TinydeployError(f"{source.reference_name} cannot run {source.description}: {_first_line(exc)}",
                              "check that the model runs on one sample") from exc
    best = None
    for perm in perms:
        converted = [_model_outputs(keras_model, sample[None].transpose(perm)) for sample in check_samples]
        outputs = _match_outputs(references, converted)
        score = sum(o.max_abs_error if o.max_abs_error is not None else np.inf for o in outputs)
        if best is None or score < best[0]:
            best = (score, perm, outputs)
    _, perm, outputs = best
    found = []
    for index, out in enumerate(outputs):
        if out.perm is None:
            found.append(f"output {index} has shape {list(out.int8_shape)} after onnx2tf, {list(out.source_shape)} "
                         "in the source: it was not compared with the source model")
        elif out.max_abs_error > FLOAT_CHECK_RELATIVE_TOLERANCE * max(out.max_abs_output, 1e-6):
            found.append(f"onnx2tf's float model differs from {source.reference_name} by up to "
                         f"{out.max_abs_error:.3g} on output {index} (outputs reach {out.max_abs_output:.3g}): the "
                         "int8 model follows the converted model; check the conversion")
    return LayoutMatch(perm, source.input_shape, tf_shape, outputs, len(check_samples), source.reference_name, found)


def _match_outputs(references: list[list[np.ndarray]], converted: list[list[np.ndarray]]) -> list[OutputMatch]:
    matches = []
    for index in range(len(references[0])):
        want = np.stack([r[index] for r in references])  # (samples, 1, ...)
        source_shape = tuple(want.shape[1:])
        if index >= len(converted[0]):
            matches.append(OutputMatch(source_shape, (), None, None, None))
            continue
        got = np.stack([c[index] for c in converted])
        int8_shape = tuple(got.shape[1:])
        best = None
        for perm in _candidate_perms(source_shape, int8_shape):
            full = (0, *(p + 1 for p in perm))
            error = float(np.max(np.abs(want.transpose(full) - got))) if want.size else 0.0
            if best is None or error < best[1]:
                best = (perm, error)
        peak = float(np.max(np.abs(want))) if want.size else 0.0
        matches.append(OutputMatch(source_shape, int8_shape, best[0] if best else None,
                                   best[1] if best else None, peak))
    return matches


def _source_layout_samples(source: SourceModel, tf_shape: tuple[int, ...], arrays: dict, path: Path,
                           what: str) -> np.ndarray:
    """The samples of a .npy/.npz in the source layout, whichever of the two layouts the file holds."""
    samples, in_source_layout = _load_either_layout(source.input_shape, tf_shape, source.input_name, arrays, path,
                                                    what)
    if in_source_layout:
        return samples
    # the shapes differ, so the one permutation that maps them is channels-last
    return samples.transpose(tuple(int(i) for i in np.argsort(channels_last(len(tf_shape)))))


def _load_either_layout(source_shape, tf_shape, input_name, arrays, path: Path, what: str):
    """(samples, True when they are in the source layout); a file that matches both is read as the source's."""
    from tinydeploy.model.convert import load_samples

    try:
        return load_samples(path, tuple(source_shape[1:]), input_name, what, arrays), True
    except TinydeployError as exc:
        if "the model needs" not in exc.message or tuple(source_shape[1:]) == tuple(tf_shape[1:]):
            raise
        first = exc
    try:
        return load_samples(path, tuple(tf_shape[1:]), input_name, what, arrays), False
    except TinydeployError as exc:
        if "the model needs" not in exc.message:
            raise
    names = LAYOUT_NAMES.get(len(source_shape), ("source", "converted"))
    raise TinydeployError(
        f"{what} data {path} has the wrong shape: the model takes (N, {', '.join(map(str, source_shape[1:]))}) "
        f"({names[0]}, as the source model) or (N, {', '.join(map(str, tf_shape[1:]))}) ({names[1]}, as the int8 "
        "model)", "stack one sample per row along the first axis") from first


def _write_channels_last(layout: LayoutMatch, input_name: str, arrays: dict, path: Path, what: str,
                         target: Path) -> Path:
    """The user's samples in the int8 model's layout, for the quantizer (which reads files)."""
    samples, in_source_layout = _load_either_layout(layout.source_shape, layout.int8_shape, input_name, arrays,
                                                    path, what)
    if in_source_layout:
        samples = samples.transpose(layout.input_perm)
    np.save(target, np.ascontiguousarray(samples))
    return target


def _evenly(samples: np.ndarray, limit: int) -> np.ndarray:
    if len(samples) <= limit:
        return samples
    return samples[np.linspace(0, len(samples) - 1, limit).round().astype(int)]


def _versions(source: SourceModel) -> dict[str, str]:
    names = {"onnx2tf": "onnx2tf", "onnx": "onnx", "tensorflow": "tensorflow-cpu"}
    if source.format != "onnx":
        names["torch"] = "torch"
        names["onnxscript"] = "onnxscript"
    versions = {}
    for key, dist in names.items():
        try:
            versions[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            if key == "tensorflow":
                with contextlib.suppress(metadata.PackageNotFoundError):
                    versions[key] = metadata.version("tensorflow")
    return versions


def describe_source(info: dict) -> list[tuple[str, str]]:
    """Rows for the conversion table: where the model came from, its layouts and the float check."""
    rows = [("source", f"{info['source']} -> {' -> '.join(info['route'])}")]
    layout = info.get("input_layout") or {}
    if layout:
        text = f"{layout['source']} {layout['source_shape']} in the source"
        if layout["permutation"] != list(range(len(layout["permutation"]))):
            text += f" -> {layout['int8_model']} {layout['int8_shape']} in the int8 model (feed it channels last; " \
                    "calibration data may be in either layout)"
        else:
            text += ", unchanged in the int8 model"
        rows.append(("input layout", text))
    for index, out in enumerate(info.get("output_layouts") or []):
        perm = out.get("permutation")
        if perm is not None and perm != list(range(len(perm))):
            rows.append((f"output {index} layout", f"{out['source_shape']} in the source -> {out['int8_shape']} "
                         "(channels last) in the int8 model"))
    check = info.get("float_check") or {}
    if check.get("max_abs_error") is not None:
        rows.append(("float check", f"converted float model vs {check['reference']}: max |error| "
                     f"{check['max_abs_error']:.3g} on {check['samples']} samples (outputs reach "
                     f"{check['max_abs_output']:.3g})"))
    stages = info.get("stage_seconds") or {}
    if stages:
        rows.append(("stages", ", ".join(f"{name} {seconds:.1f} s" for name, seconds in stages.items())))
    return rows


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
