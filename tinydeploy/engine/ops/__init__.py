"""One module per op family; importing this package registers every lowering."""

from tinydeploy.engine.ops import conv_2d, depthwise_conv_2d, fully_connected, pooling, reshape  # noqa: F401
