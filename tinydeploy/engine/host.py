"""The native engine built for the host: the same C kernels and generated model as a shared library.

Used to prove the kernels bit-exact against TFLM without a board (system gcc, loaded through ctypes)."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

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
    input_bytes: int
    output_bytes: int
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
        lib.td_engine_input.restype = ctypes.POINTER(ctypes.c_int8)
        lib.td_engine_input.argtypes = [ctypes.POINTER(ctypes.c_uint32)]
        lib.td_engine_output.restype = ctypes.POINTER(ctypes.c_int8)
        lib.td_engine_output.argtypes = [ctypes.POINTER(ctypes.c_uint32)]
        lib.td_engine_activation_bytes.restype = ctypes.c_uint32
        lib.td_engine_name.restype = ctypes.c_char_p
        if lib.td_engine_init() != 0:
            raise TinydeployError("the native engine failed to initialise on the host", None, EXIT_FAILED)
        in_size, out_size = ctypes.c_uint32(), ctypes.c_uint32()
        lib.td_engine_input(ctypes.byref(in_size))
        lib.td_engine_output(ctypes.byref(out_size))
        return cls(plan, library, in_size.value, out_size.value, lib)

    @property
    def name(self) -> str:
        return self._lib.td_engine_name().decode()

    @property
    def activation_bytes(self) -> int:
        return int(self._lib.td_engine_activation_bytes())

    def run(self, input_bytes: bytes) -> bytes:
        """One inference: copy the input in, invoke, copy the output out."""
        data = bytes(input_bytes)
        if len(data) != self.input_bytes:
            raise TinydeployError(f"the input has {len(data)} bytes; the model takes {self.input_bytes}",
                                  "give one input tensor's bytes")
        pointer = self._lib.td_engine_input(None)
        ctypes.memmove(pointer, data, len(data))
        status = self._lib.td_engine_invoke()
        if status != 0:
            raise TinydeployError(f"the native engine's invoke failed with status {status}", None, EXIT_FAILED)
        return ctypes.string_at(self._lib.td_engine_output(None), self.output_bytes)
