"""Benchmarks: each prints its figures (README, Benchmarks)."""

import trainer  # noqa: F401  (TensorFlow's settings, trainer/__init__.py, before a benchmark imports it)
