"""An exponential moving average of a network's weights, the weights that are evaluated and delivered.

A run of a few hundred steps ends while the weights still jitter from batch to batch; their average
over the last few dozen steps is a better model than the last step's weights. The average covers
every weight, batch-norm statistics included, and its decay ramps up from zero so the first steps,
far from any good model, are forgotten quickly:

    decay(step) = decay * (1 - exp(-step / ramp_steps))      (after YOLOv5's ModelEMA)

The training loop keeps training the raw weights; `swapped()` puts the average in place for an
evaluation or a checkpoint and puts the raw weights back afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf


class WeightAverage:
    def __init__(self, network: keras.Model, decay: float, ramp_steps: float = 25.0) -> None:
        self.decay = decay
        self.ramp_steps = ramp_steps
        self.weights = list(network.weights)
        self.average = [tf.Variable(tf.identity(w.value), trainable=False) for w in self.weights]

    def update(self, step: tf.Tensor) -> None:
        """Fold the current weights in (call inside the train step, after the optimizer; traced)."""
        step = tf.cast(step, tf.float32)
        decay = self.decay * (1.0 - tf.exp(-step / self.ramp_steps))
        for avg, w in zip(self.average, self.weights, strict=True):
            avg.assign(decay * avg + (1.0 - decay) * tf.cast(w.value, avg.dtype))

    def reset(self) -> None:
        """Start the average at the current weights (after loading a checkpoint)."""
        for avg, w in zip(self.average, self.weights, strict=True):
            avg.assign(w.value)

    @contextmanager
    def swapped(self) -> Iterator[None]:
        """The averaged weights in the network for the duration of the block."""
        raw = [w.numpy() for w in self.weights]
        for w, avg in zip(self.weights, self.average, strict=True):
            w.assign(avg)
        try:
            yield
        finally:
            for w, value in zip(self.weights, raw, strict=True):
                w.assign(value)
