"""Loading models: the TFLite flatbuffer (no TensorFlow) and conversion from Keras/SavedModel (lazy TensorFlow)."""
