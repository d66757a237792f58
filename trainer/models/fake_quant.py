"""Quantization-aware training: the int8 model's activation rounding, simulated while training.

The delivered model is fully int8: TFLite rounds every activation tensor to 256 levels of its own
calibrated range. The network trained in float never sees that rounding, and on robosub the int8
model came out 0.01-0.02 below the float one in mAP. For the last part of a run
(`TrainConfig.quantize_from`) the activations the int8 model rounds are rounded here the same way,
with the straight-through gradient of `tf.quantization.fake_quant_with_min_max_vars`, so the weights
learn to work with it.

Which tensors (the ones the converter quantizes, after it fuses Conv + BatchNorm + ReLU6):
- every ReLU / ReLU6 output (the end of each fused convolution),
- the BatchNorms no activation follows (MobileNetV2's linear bottlenecks, `*_project_BN`),
- the residual Adds,
- the two concatenated head outputs (box encodings and class logits: TFLite's int8 concatenation
  gives all its inputs one scale, so every level's head rounds on that shared grid). The box
  encodings' range stops at the export's clip (trainer/export.py::save_module).

Each tensor's range is measured on training images when quantization starts (`calibrate`), as the
converter measures it, and held fixed. Weights are not rounded: int8 weights are per channel, and
their rounding is small beside the activations'.

The layers keep their class names and variables (only `__class__` changes, as in batchnorm.py), so
weights files are unchanged, and the range and on/off switch live in variables outside Keras'
tracking: switching on retraces nothing. Export builds a fresh network, without any of this.
"""

from __future__ import annotations

from collections.abc import Iterable

import keras
import numpy as np
import tensorflow as tf

from trainer.models.batchnorm import BatchNormalization as FusedBatchNormalization

CONCATENATIONS = ("box_encodings", "class_logits")


class _Rounding:
    """One tensor's simulated int8 rounding: its range, and the switch shared by all of them."""

    def __init__(self, enabled: tf.Variable) -> None:
        self.enabled = enabled
        self.low = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.high = tf.Variable(0.0, trainable=False, dtype=tf.float32)
        self.seen: list[float] | None = None  # [min, max] while calibrating

    def __call__(self, x: tf.Tensor) -> tf.Tensor:
        if self.seen is not None:  # calibrating, eagerly
            low, high = float(tf.reduce_min(x)), float(tf.reduce_max(x))
            self.seen = [min(self.seen[0], low), max(self.seen[1], high)]
            return x

        def rounded() -> tf.Tensor:
            y = tf.quantization.fake_quant_with_min_max_vars(
                tf.cast(x, tf.float32), self.low, self.high, num_bits=8
            )
            return tf.cast(y, x.dtype)

        return tf.cond(self.enabled, rounded, lambda: tf.identity(x))


def _rounding(layer: keras.layers.Layer) -> _Rounding:
    return layer.__dict__["_fieldlens_rounding"]


@keras.saving.register_keras_serializable(package="fieldlens_qat")
class ReLU(keras.layers.ReLU):
    def call(self, inputs):
        return _rounding(self)(super().call(inputs))


@keras.saving.register_keras_serializable(package="fieldlens_qat")
class BatchNormalization(FusedBatchNormalization):
    def call(self, inputs, training=None, mask=None):
        return _rounding(self)(super().call(inputs, training=training, mask=mask))


@keras.saving.register_keras_serializable(package="fieldlens_qat")
class Add(keras.layers.Add):
    def call(self, inputs):
        return _rounding(self)(super().call(inputs))


@keras.saving.register_keras_serializable(package="fieldlens_qat")
class Concatenate(keras.layers.Concatenate):
    def call(self, inputs):
        return _rounding(self)(super().call(inputs))


_SWAPS = {
    keras.layers.ReLU: ReLU,
    FusedBatchNormalization: BatchNormalization,
    keras.layers.Add: Add,
    keras.layers.Concatenate: Concatenate,
}


def _quantized_here(layer: keras.layers.Layer) -> bool:
    """Whether the int8 model rounds this layer's output (see the module's docstring)."""
    kind = type(layer)
    if kind is FusedBatchNormalization:
        return layer.name.endswith("_project_BN")
    if kind is keras.layers.Concatenate:
        return layer.name in CONCATENATIONS
    return kind in (keras.layers.ReLU, keras.layers.Add)


class FakeQuantization:
    """The int8 rounding of `network`'s activations, off until `calibrate` and `enable`."""

    def __init__(self, network: keras.Model, box_bound: float | None = None) -> None:
        self.box_bound = box_bound
        self.enabled = tf.Variable(False, trainable=False)
        self.on = False
        self.layers: dict[str, _Rounding] = {}
        for layer in network._flatten_layers(include_self=False, recursive=True):
            if _quantized_here(layer):
                rounding = _Rounding(self.enabled)
                # not through Keras' __setattr__: the variables stay out of the layer's weights
                layer.__dict__["_fieldlens_rounding"] = rounding
                layer.__class__ = _SWAPS[type(layer)]
                self.layers[layer.name] = rounding
        self.network = network

    def calibrate(self, batches: Iterable[np.ndarray]) -> dict[str, tuple[float, float]]:
        """Measure each tensor's range on `batches` of float images (inference mode, eagerly), as the
        converter's calibration does; returns them by layer name."""
        for r in self.layers.values():
            r.seen = [np.inf, -np.inf]
        try:
            for images in batches:
                self.network(tf.constant(images, tf.float32), training=False)
        finally:
            seen = {name: r.seen for name, r in self.layers.items()}
            for r in self.layers.values():
                r.seen = None
        ranges = {}
        for name, found in seen.items():
            assert found is not None
            low, high = min(found[0], 0.0), max(found[1], 0.0)  # int8 ranges hold zero
            if name == "box_encodings" and self.box_bound is not None:
                low, high = max(low, -self.box_bound), min(high, self.box_bound)
            if not high > low:
                high = low + 1e-3
            self.layers[name].low.assign(low)
            self.layers[name].high.assign(high)
            ranges[name] = (low, high)
        return ranges

    def enable(self, on: bool = True) -> None:
        self.enabled.assign(on)
        self.on = on
