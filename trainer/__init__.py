"""FieldLens trainer: owns TensorFlow. Data pipeline, SSD models, training, evaluation, export."""

import os

# TensorFlow's C++ INFO/WARNING lines (oneDNN, converter statistics) drown the progress output;
# errors still show. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
