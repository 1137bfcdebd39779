"""PyTorch models in: a `torch.export` program saved as .pt2, or `module:function` returning a model.

Route: torch.export program -> ONNX (torch.onnx.export, the dynamo exporter) -> tinydeploy.model.convert_onnx
(onnx2tf, then the TFLite converter with the calibration data). The float check runs the exported program itself.

`module:function` names a function that takes no arguments and returns either
  - a `torch.export.ExportedProgram` with one float32 input of batch 1 (or a dynamic batch), or
  - a tuple `(module, example_inputs)`: a `torch.nn.Module` and a tuple of one example input tensor (a single
    tensor is accepted too); the module is put in eval mode and exported with `torch.export.export` on the first
    sample of the example (batch 1).
`module` is a dotted module name importable from the current directory or PYTHONPATH, or a path to a .py file.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
import time
import warnings
from importlib import metadata
from pathlib import Path

import numpy as np

from tinydeploy.errors import TinydeployError

FUNCTION_SPEC = re.compile(r"^(?P<module>[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*|[^:]+\.py):(?P<function>[A-Za-z_]\w*)$")
CONTRACT = "return a torch.export.ExportedProgram, or (module, example_inputs) with one example input tensor"


def torch_install_hint() -> str:
    from tinydeploy.model.convert_onnx import onnx_install_hint

    return ("install a CPU build of torch (e.g. pip install torch==2.13.0), then "
            + onnx_install_hint().replace("tinydeploy[onnx]", "tinydeploy[torch]"))


def is_function_spec(text: str) -> bool:
    """`package.module:function` or `path/to/file.py:function`."""
    return FUNCTION_SPEC.match(text) is not None


def model_stem(model_path: Path) -> str:
    """The model's name for a `module:function` (the function's name); the file's stem otherwise."""
    match = FUNCTION_SPEC.match(str(model_path))
    if match is not None and not model_path.exists():
        return match.group("function")
    return model_path.stem


def import_torch():
    try:
        import torch
    except ImportError as exc:
        raise TinydeployError("converting PyTorch models needs torch, which is not installed",
                              torch_install_hint()) from exc
    return torch


def load_torch_source(model_path: Path):
    """The SourceModel (ONNX graph plus the exported program as float reference) of a .pt2 or module:function."""
    from tinydeploy.model.convert_onnx import SourceModel, import_onnx, onnx_single_input

    import_onnx()  # the route goes through ONNX: say what is missing before the slow torch import
    started = time.perf_counter()
    torch = import_torch()
    import_seconds = time.perf_counter() - started
    started = time.perf_counter()
    if not model_path.exists() and is_function_spec(str(model_path)):
        program, description, fmt = _program_from_function(torch, str(model_path))
    else:
        program, description, fmt = _program_from_file(torch, model_path), f"PyTorch program {model_path}", "pt2"
    example = _example_input(torch, program, description)
    stages = {"load": time.perf_counter() - started}

    started = time.perf_counter()
    onnx_model = _to_onnx(torch, program, example, description)
    stages["torch.onnx"] = time.perf_counter() - started
    name, shape = onnx_single_input(onnx_model, description)
    module = program.module()

    def reference(sample: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            outputs = module(torch.from_numpy(np.ascontiguousarray(sample, dtype=np.float32)))
        flat = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return [out.detach().cpu().numpy() for out in flat]

    return SourceModel(onnx_model, fmt, description, name, shape, reference, f"PyTorch {metadata.version('torch')}",
                       ["torch.onnx", "onnx2tf", "TFLite converter"], stages, import_seconds)


def _program_from_file(torch, model_path: Path):
    from tinydeploy.fsutil import check_input_file

    check_input_file(model_path, "model", "give a .pt2 file saved with torch.export.save")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.export.load(str(model_path))
    except Exception as exc:  # zip, pickle and version errors of every kind
        raise TinydeployError(f"{model_path} is not a loadable torch.export program: {_first_line(exc)}",
                              "save it with torch.export.save(torch.export.export(model, (example,)), 'model.pt2') "
                              "with this torch version") from exc


def _program_from_function(torch, spec: str):
    match = FUNCTION_SPEC.match(spec)
    if match is None:
        raise TinydeployError(f"'{spec}' is not module:function", "name a function, e.g. mypackage.models:build")
    module_name, function_name = match.group("module"), match.group("function")
    module = _import_module(module_name)
    function = getattr(module, function_name, None)
    if not callable(function):
        raise TinydeployError(f"{module_name} has no function '{function_name}'",
                              f"define {function_name}() in it; it must {CONTRACT}")
    try:
        returned = function()
    except Exception as exc:
        raise TinydeployError(f"{spec}() raised {type(exc).__name__}: {_first_line(exc)}",
                              "fix the function (rerun with --debug for the traceback)") from exc
    description = f"PyTorch model from {spec}"
    if isinstance(returned, torch.export.ExportedProgram):
        return returned, description, "torch_function"
    if isinstance(returned, (tuple, list)) and len(returned) == 2 and isinstance(returned[0], torch.nn.Module):
        model, example = returned
        examples = tuple(example) if isinstance(example, (tuple, list)) else (example,)
        if len(examples) != 1 or not isinstance(examples[0], torch.Tensor):
            raise TinydeployError(f"{spec}() returned {len(examples)} example inputs; tinydeploy converts "
                                  "single-input models", f"{CONTRACT}")
        sample = examples[0][:1] if examples[0].dim() > 0 else examples[0]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                program = torch.export.export(model.eval(), (sample,))
        except Exception as exc:
            raise TinydeployError(f"torch.export cannot export the model of {spec}: {_first_line(exc)}",
                                  "make the model exportable (torch.export.export(model, (example,)))") from exc
        return program, description, "torch_function"
    raise TinydeployError(f"{spec}() returned {type(returned).__name__}", f"it must {CONTRACT}")


def _import_module(module_name: str):
    if module_name.endswith(".py"):
        path = Path(module_name)
        if not path.is_file():
            raise TinydeployError(f"Python file not found: {path}", "check the path before the ':'")
        spec = importlib.util.spec_from_file_location(f"tinydeploy_user_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        loader = spec.loader.exec_module
    else:
        if "" not in sys.path and str(Path.cwd()) not in sys.path:
            sys.path.insert(0, str(Path.cwd()))  # as `python -m` does, so a module beside the user imports
        module, loader = None, None
    try:
        if loader is not None:
            loader(module)
            return module
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise TinydeployError(f"cannot import {module_name}: {_first_line(exc)}",
                              "run tinydeploy from the directory that holds it, or add it to PYTHONPATH") from exc
    except Exception as exc:
        raise TinydeployError(f"importing {module_name} failed: {type(exc).__name__}: {_first_line(exc)}",
                              "fix the module (rerun with --debug for the traceback)") from exc


def _example_input(torch, program, description: str):
    """A batch-1 input of the program's one float32 user input (zeros: only its shape matters to the exporter)."""
    user_inputs = list(program.graph_signature.user_inputs)
    placeholders = {node.name: node for node in program.graph.nodes if node.op == "placeholder"}
    tensors = [placeholders[name] for name in user_inputs if name in placeholders
               and isinstance(placeholders[name].meta.get("val"), torch.Tensor)]
    if len(user_inputs) != 1 or len(tensors) != 1:
        raise TinydeployError(f"{description} takes {len(user_inputs)} inputs; tinydeploy converts single-input "
                              "models", "export a model that takes one input tensor")
    value = tensors[0].meta["val"]
    if value.dtype != torch.float32:
        raise TinydeployError(f"{description}: the input is {value.dtype}, not float32",
                              "export it with a float32 example input")
    dims = []
    for position, dim in enumerate(value.shape):
        if isinstance(dim, int):
            dims.append(dim)
        elif position == 0:
            dims.append(1)  # a dynamic batch: converted with a batch of 1
        else:
            raise TinydeployError(f"{description}: input dimension {position} is dynamic ({dim})",
                                  "export with static shapes except the batch (microcontrollers need them)")
    if not dims or dims[0] != 1:
        raise TinydeployError(f"{description}: the input has shape {dims}, a batch of {dims[0] if dims else 0}",
                              "export the model with an example input of batch 1")
    return torch.zeros(dims, dtype=torch.float32)


def _to_onnx(torch, program, example, description: str):
    from tinydeploy.model.convert import _native_output_captured

    captured: list[str] = []
    try:
        with warnings.catch_warnings(), _native_output_captured() as captured:
            warnings.simplefilter("ignore")
            exported = torch.onnx.export(program, (example,), dynamo=True, external_data=False, verbose=False,
                                         report=False)
    except ImportError as exc:  # the dynamo exporter needs onnxscript
        raise TinydeployError(f"torch.onnx needs {exc.name or 'onnxscript'}, which is not installed",
                              torch_install_hint()) from exc
    except Exception as exc:
        reason = next((line.strip() for line in reversed(captured) if "Error" in line), _first_line(exc))
        raise TinydeployError(f"torch.onnx cannot export {description}: {reason[:300]}",
                              "the model may use an op without an ONNX translation; replace that layer") from exc
    return exported.model_proto


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:200]
