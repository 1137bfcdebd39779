"""Build damaged or edited TFLite flatbuffers from a good one (object API of the schema tflite-micro ships)."""

from __future__ import annotations

from typing import Callable

import flatbuffers
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema


def edit_tflite(data: bytes, change: Callable[[object], None]) -> bytes:
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(data, 0))
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())
