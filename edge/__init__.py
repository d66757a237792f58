"""FieldLens edge runtime: run a delivered detector on a robot co-processor or Raspberry Pi.

Needs only numpy, Pillow and a TFLite interpreter (ai-edge-litert, or tflite-runtime); never
TensorFlow, discord or another FieldLens package, so `pip install 'fieldlens[edge]'` is enough.
"""
