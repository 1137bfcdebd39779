"""One module per op family; importing this package registers every lowering."""

from tinydeploy.engine.ops import (  # noqa: F401
    activations, batch_matmul, concatenation, conv_2d, depthwise_conv_2d, elementwise, fully_connected, hard_swish,
    leaky_relu, lstm, maximum_minimum, pack, pad, pooling, prelu, quantize, reduce, relu, reshape,
    resize_nearest_neighbor, softmax, split, strided_slice, sub, svdf, transpose, transpose_conv,
)
