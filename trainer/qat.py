"""Quantization-aware training: the end of a run sees the int8 model's rounding.

The delivered model is fully int8 (trainer/export.py): each convolution's kernel, folded with its
BatchNorm, rounded per output channel to 255 levels, and each activation to 256 levels over the
range that calibration saw. The rounding error of every layer is small, but on a deep network it
adds up: on one robosub model the int8 model stayed 0.010 below float on mAP@0.5:0.95 with the
error spread evenly over the backbone's blocks (README).

`make_quant_aware` gives a network's layers the int8 model's rounding in their forward pass (fake
quantization, gradients passed straight through), switched on only while a training step is traced
inside `simulating()`. The weights then learn where rounding costs little. Nothing else sees it:
evaluation, checkpoints and the export run the layers as before, and the export still calibrates.

What is rounded, as the converter does it:
- kernels of Conv2D and DepthwiseConv2D, per output channel, symmetric [-127, 127]: the same
  rounding as of the kernel folded with its BatchNorm, which scales each output channel by one factor;
- the outputs of ReLU, Add, and of a BatchNorm that no ReLU follows (MobileNetV2's projections),
  asymmetric 8 bits over the widest range the output has had since the rounding began (the
  converter's is the widest over the calibration images). A batch's own range alone, as a first
  version had it, left one robosub model 0.007 below float on mAP@0.5:0.95; the running range,
  0.002 (README).
Head outputs are left alone: their rounding cost 0.001 mAP (bench/int8.py).

An earlier try (225fe24, removed in bd75b4f) rounded the activations only, on ranges fixed once from
the calibration images, from 70% of the run, and lost on every figure (README, Benchmarks).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import keras
import tensorflow as tf

from trainer.models.batchnorm import BatchNormalization as FusedBatchNormalization

__all__ = ["RunningRange", "make_quant_aware", "round_activation", "round_kernel", "simulating"]

_simulating = False


@contextmanager
def simulating() -> Iterator[None]:
    """Layers made quant-aware round as int8 in what is traced (or run eagerly) in this block."""
    global _simulating
    before, _simulating = _simulating, True
    try:
        yield
    finally:
        _simulating = before


def round_kernel(kernel: tf.Tensor, depthwise: bool = False) -> tf.Tensor:
    """`kernel` [h, w, in, out] (depthwise: [h, w, channels, multiplier]) rounded per output channel
    to the symmetric int8 grid of its largest magnitude; the gradient passes straight through."""
    k = tf.cast(kernel, tf.float32)
    shape = tf.shape(k)
    if depthwise:  # output channels are channels x multiplier, channel-major
        k = tf.reshape(k, tf.concat([shape[:2], [-1]], 0))
    largest = tf.reduce_max(tf.abs(k), axis=[0, 1, 2][: len(k.shape) - 1])
    bound = tf.stop_gradient(tf.maximum(largest, 1e-8))
    q = tf.quantization.fake_quant_with_min_max_vars_per_channel(
        k, -bound, bound, num_bits=8, narrow_range=True
    )
    return tf.cast(tf.reshape(q, shape), kernel.dtype)


class RunningRange:
    """The widest range a layer's output has had while rounding, as calibration keeps the widest
    over its images. Held outside Keras's tracking, so weight files and the EMA do not see it."""

    def __init__(self) -> None:
        self.low = tf.Variable(0.0, trainable=False, name="qat_low")
        self.high = tf.Variable(0.0, trainable=False, name="qat_high")


def round_activation(x: tf.Tensor, running: RunningRange | None = None) -> tf.Tensor:
    """`x` rounded to 256 levels over its own range, or over `running` widened by it (the range
    widened to hold 0 and nudged to put 0 on the grid, as the converter's); the gradient passes
    straight through inside that range."""
    x32 = tf.cast(x, tf.float32)
    low = tf.stop_gradient(tf.minimum(tf.reduce_min(x32), 0.0))
    high = tf.stop_gradient(tf.maximum(tf.reduce_max(x32), low + 1e-6))
    if running is not None:
        low = running.low.assign(tf.minimum(running.low, low))
        high = running.high.assign(tf.maximum(running.high, high))
    return tf.cast(tf.quantization.fake_quant_with_min_max_vars(x32, low, high, num_bits=8), x.dtype)


# Each keeps its base's class name: a Keras weights file keys a layer's variables by it.
class Conv2D(keras.layers.Conv2D):
    def convolution_op(self, inputs, kernel):
        return super().convolution_op(inputs, round_kernel(kernel) if _simulating else kernel)


class DepthwiseConv2D(keras.layers.DepthwiseConv2D):
    def call(self, inputs):
        if not _simulating:
            return super().call(inputs)
        outputs = keras.ops.depthwise_conv(
            inputs,
            round_kernel(self.kernel, depthwise=True),
            strides=self.strides,
            padding=self.padding,
            dilation_rate=self.dilation_rate,
            data_format=self.data_format,
        )
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs) if self.activation is not None else outputs


class ReLU(keras.layers.ReLU):
    running: RunningRange | None = None

    def call(self, inputs):
        outputs = super().call(inputs)
        return round_activation(outputs, self.running) if _simulating else outputs


class Add(keras.layers.Add):
    running: RunningRange | None = None

    def call(self, inputs):
        outputs = super().call(inputs)
        return round_activation(outputs, self.running) if _simulating else outputs


class BatchNormalization(FusedBatchNormalization):
    """Rounds its output only where no ReLU follows (the converter fuses a ReLU into the op before)."""

    round_output = False
    running: RunningRange | None = None

    def call(self, inputs, training=None, mask=None):
        outputs = super().call(inputs, training=training, mask=mask)
        return round_activation(outputs, self.running) if _simulating and self.round_output else outputs


_QUANT_AWARE: dict[type, type] = {
    keras.layers.Conv2D: Conv2D,
    keras.layers.DepthwiseConv2D: DepthwiseConv2D,
    keras.layers.ReLU: ReLU,
    keras.layers.Add: Add,
    keras.layers.BatchNormalization: BatchNormalization,
    FusedBatchNormalization: BatchNormalization,
}


def make_quant_aware(network: keras.Model) -> int:
    """Make `network`'s layers (nested models included) the quant-aware ones above, in place: their
    variables, weights and names stay, and they behave as before outside `simulating()`. Each layer
    whose output rounds gets a new running range. Returns how many layers changed."""
    n = 0
    for layer in network._flatten_layers(include_self=False, recursive=True):
        quant_aware = _QUANT_AWARE.get(type(layer))
        if quant_aware is None:
            continue
        layer.__class__ = quant_aware
        if quant_aware is BatchNormalization:
            layer.round_output = not all(isinstance(user, keras.layers.ReLU) for user in _users(layer))
        if quant_aware in (ReLU, Add) or getattr(layer, "round_output", False):
            object.__setattr__(layer, "running", RunningRange())  # untracked (see RunningRange)
        n += 1
    return n


def _users(layer: keras.layers.Layer) -> list:
    """The layers that take `layer`'s output."""
    return [node.operation for node in layer._outbound_nodes]
