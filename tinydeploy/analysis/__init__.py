"""Analysis of a parsed model: compute (MACs), memory (tensor lifetimes, TFLM arena) and the fit on a board."""
