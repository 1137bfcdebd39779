"""The native engine built for the host: the same C kernels and generated model as a shared library.

Used to prove the kernels bit-exact against TFLM without a board (system gcc, loaded through ctypes)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from tinydeploy.engine.codegen import NativePlan, emit_native_sources
from tinydeploy.errors import EXIT_FAILED, TinydeployError
from tinydeploy.model.tflite import TfliteModel
from tinydeploy.paths import firmware_dir

HOST_CFLAGS = ("-std=c11", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared")


def compile_host_library(sources: list[Path], include_dirs: list[Path], output: Path,
                         compiler: str = "gcc") -> Path:
    if shutil.which(compiler) is None:
        raise TinydeployError(f"the host C compiler {compiler} is not installed", "install gcc", EXIT_FAILED)
    command = [compiler, *HOST_CFLAGS, *(f"-I{d}" for d in include_dirs), *map(str, sources), "-o", str(output)]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise TinydeployError(f"compiling the native engine for the host failed: {result.stderr.strip()[:2000]}",
                              "this is a tinydeploy bug; please report it with the model", EXIT_FAILED)
    return output


@dataclass
class HostEngine:
    plan: NativePlan
    library_path: Path
    input_sizes: list[int]  # bytes of each model input, in the model's order
    output_sizes: list[int]
    _lib: ctypes.CDLL

    @classmethod
    def build(cls, model: TfliteModel, workdir: Path, fast_kernels: bool = True) -> "HostEngine":
        workdir = Path(workdir)
        plan = emit_native_sources(model, workdir, fast_kernels)
        sources = [plan.model_source] + [p for p in plan.kernel_sources if p.suffix == ".c"]
        library = compile_host_library(sources, [firmware_dir() / "include", firmware_dir() / "engine"],
                                       workdir / "libtd_native.so")
        lib = ctypes.CDLL(str(library))
        lib.td_engine_init.restype = ctypes.c_int
        lib.td_engine_invoke.restype = ctypes.c_int
        for name in ("td_engine_input_count", "td_engine_output_count", "td_engine_activation_bytes"):
            getattr(lib, name).restype = ctypes.c_uint32
        for name in ("td_engine_input_tensor", "td_engine_output_tensor"):
            getattr(lib, name).restype = ctypes.c_void_p
            getattr(lib, name).argtypes = [ctypes.c_uint32, ctypes.POINTER(ctypes.c_uint32)]
        lib.td_engine_name.restype = ctypes.c_char_p
        if lib.td_engine_init() != 0:
            raise TinydeployError("the native engine failed to initialise on the host", None, EXIT_FAILED)

        def sizes(function, count: int) -> list[int]:
            result = []
            for index in range(count):
                size = ctypes.c_uint32()
                function(index, ctypes.byref(size))
                result.append(size.value)
            return result

        return cls(plan, library, sizes(lib.td_engine_input_tensor, lib.td_engine_input_count()),
                   sizes(lib.td_engine_output_tensor, lib.td_engine_output_count()), lib)

    @property
    def input_bytes(self) -> int:
        """Bytes of input 0."""
        return self.input_sizes[0]

    @property
    def output_bytes(self) -> int:
        """Bytes of output 0."""
        return self.output_sizes[0]

    @property
    def name(self) -> str:
        return self._lib.td_engine_name().decode()

    @property
    def activation_bytes(self) -> int:
        return int(self._lib.td_engine_activation_bytes())

    def run(self, inputs: bytes | Sequence[bytes]) -> bytes | list[bytes]:
        """One inference: copy the inputs in, invoke, copy the outputs out.

        `inputs` is one bytes object (a model with one input; returns output 0's bytes) or a sequence with each
        input's bytes in the model's order (returns a list with each output's bytes)."""
        single = isinstance(inputs, (bytes, bytearray, memoryview))
        data = [bytes(inputs)] if single else [bytes(item) for item in inputs]
        if len(data) != len(self.input_sizes):
            raise TinydeployError(f"{len(data)} input tensor(s) given; the model takes {len(self.input_sizes)}",
                                  "give each input tensor's bytes, in the model's order")
        for index, (item, size) in enumerate(zip(data, self.input_sizes)):
            if len(item) != size:
                which = "the input" if len(data) == 1 else f"input {index}"
                raise TinydeployError(f"{which} has {len(item)} bytes; the model takes {size}",
                                      "give one input tensor's bytes")
            ctypes.memmove(self._lib.td_engine_input_tensor(index, None), item, size)
        status = self._lib.td_engine_invoke()
        if status != 0:
            raise TinydeployError(f"the native engine's invoke failed with status {status}", None, EXIT_FAILED)
        outputs = [ctypes.string_at(self._lib.td_engine_output_tensor(index, None), size)
                   for index, size in enumerate(self.output_sizes)]
        return outputs[0] if single else outputs
