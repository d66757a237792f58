"""FieldLens trainer: owns TensorFlow. Data pipeline, SSD models, training, evaluation, export."""

import os

# TensorFlow's C++ INFO/WARNING lines (oneDNN, converter statistics) drown the progress output;
# errors still show. A user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# TensorFlow turns its oneDNN CPU kernels on by itself only on CPUs with AVX-512 VNNI, BF16 or AMX.
# On an AVX2 CPU (this project's 2-core machine) they trained ssd_mobilenet_v2_320 1.5-1.7x faster
# (batch 32: 3.0-3.1 -> 1.8-2.1 s a step) and took the step's system time from 1.2-1.35 s to under
# 0.1 s (Eigen's kernels page-fault fresh buffers every step). Read once, when TensorFlow is first
# imported: trainer is imported first by every FieldLens entry point. TF_ENABLE_ONEDNN_OPTS=0 turns
# it off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
