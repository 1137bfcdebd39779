"""Conformance of the native engine with TFLM (the tflite_micro host runtime), one module per op.

The shared machinery (case drawing, TensorFlow conversion, comparison with TFLM) is in harness.py."""
