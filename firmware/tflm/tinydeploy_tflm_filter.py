"""PlatformIO pre-script of generated TFLM projects, for boards other than the Nano 33 BLE: leaves out the
parts of the Arduino TFLM library that only build there (its audio peripherals) or that the sketch does not use
(its serial test harness). The interpreter and kernels build for any Cortex-M."""

import os

Import("env")  # noqa: F821 (SCons provides Import)

_NANO_ONLY = ("/src/peripherals/", "/src/test_over_serial/")


def _skip_nano_only(node):
    path = node.srcnode().get_abspath().replace(os.sep, "/")
    for part in _NANO_ONLY:
        cut = path.find(part)
        if cut >= 0 and os.path.isfile(path[:cut] + "/src/TensorFlowLite.h"):
            return None  # None drops the file from the build
    return node


env.AddBuildMiddleware(_skip_nano_only)  # noqa: F821
