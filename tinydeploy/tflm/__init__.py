"""What a TFLite Micro sketch needs besides the model: the library (library.py), the op resolver (resolver.py) and
the tensor arena's size (arena.py). The engine that writes the sketch is tinydeploy.engines.tflm."""
