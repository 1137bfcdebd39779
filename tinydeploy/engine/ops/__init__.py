"""One module per op family; importing this package registers every lowering."""

from tinydeploy.engine.ops import (  # noqa: F401
    activations, batch_matmul, concatenation, conv_2d, depthwise_conv_2d, elementwise, fully_connected, lstm, pad,
    pooling, quantize, reduce, reshape, softmax, svdf, transpose_conv,
)
