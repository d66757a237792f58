"""Correct the biases of the exported copy for int8's weight rounding (bias correction, Nagel et al.
2019, "Data-Free Quantization"), without touching the float model that is delivered beside it.

Where robosub's int8 drop sat (bench/int8.py, 2026-11-25, README): with MobileNetV2's first depthwise
convolution alone left in float, int8 was as good as float. Its input is ReLU6 output whose channels
sit at 2-5 on average, and each of its channels has only 9 weights. TFLite rounds each channel's
weights (BatchNorm folded in) to 255 levels of its largest one; the rounding error times that large
mean input does not average out over 9 weights, and shifts a channel's output by up to 6 of its int8
steps, the same way on every pixel (robosub's seed-2 model: 1.56 steps RMS over the layer).

A shift that is the same on every pixel is a bias: for each convolution followed by a BatchNorm, the
mean over the calibration images of what the rounded weights miss (the convolution of the rounding
error with the layer's float input) is added to the BatchNorm's beta, so that the int8 convolution's
output has the float one's mean. On that layer the error then falls to 0.25 steps RMS.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import keras
import numpy as np

# ~TFLite's per-channel int8 weights: symmetric, [-127, 127], one scale per output channel
LEVELS = 127
BATCH = 16  # calibration images at a time


def fold(bn: keras.layers.BatchNormalization) -> np.ndarray:
    """The per-channel factor TFLite folds into the convolution before `bn`: gamma / sqrt(variance +
    epsilon)."""
    gamma, _, _, variance = bn.get_weights()
    return gamma / np.sqrt(variance + bn.epsilon)


def rounding_error(kernel: np.ndarray, fold: np.ndarray, depthwise: bool) -> np.ndarray:
    """What TFLite's int8 rounding takes from the folded kernel (`kernel` x `fold`, the BatchNorm's
    gamma / sqrt(variance + epsilon) per output channel): the folded kernel minus its rounded self."""
    axis = 2 if depthwise else 3
    shape = [1, 1, 1, 1]
    shape[axis] = -1
    folded = kernel * fold.reshape(shape)
    others = tuple(a for a in range(4) if a != axis)
    step = np.abs(folded).max(axis=others, keepdims=True) / LEVELS
    step = np.where(step > 0, step, 1.0)
    return (folded - np.round(folded / step) * step).astype(np.float32)


def _batches(images: Iterator[np.ndarray], size: int) -> Iterator[np.ndarray]:
    batch: list[np.ndarray] = []
    for image in images:
        batch.append(image)
        if len(batch) == size:
            yield np.concatenate(batch)
            batch = []
    if batch:
        yield np.concatenate(batch)


def _convolve(conv: keras.layers.Layer, x, kernel: np.ndarray):
    """`conv` applied to `x` with `kernel` in place of its own (the convolution is linear: with the
    rounding error as kernel it gives what rounding takes from the output)."""
    if isinstance(conv, keras.layers.DepthwiseConv2D):
        return keras.ops.depthwise_conv(
            x, kernel, conv.strides, conv.padding, dilation_rate=conv.dilation_rate
        )
    return keras.ops.conv(x, kernel, conv.strides, conv.padding, dilation_rate=conv.dilation_rate)


def conv_bn_pairs(model: keras.Model) -> list[tuple[keras.layers.Layer, keras.layers.BatchNormalization]]:
    """Each convolution of `model` (without a bias of its own) whose output goes straight into a
    BatchNormalization with a gamma and a beta, with that BatchNorm."""
    pairs = []
    for layer in model.layers:
        if not (isinstance(layer, keras.layers.BatchNormalization) and layer.scale and layer.center):
            continue
        try:
            source = layer.input._keras_history.operation
        except (AttributeError, ValueError):
            continue
        if isinstance(source, keras.layers.Conv2D | keras.layers.DepthwiseConv2D) and not source.use_bias:
            pairs.append((source, layer))
    return pairs


def correct_biases(
    network: keras.Model, images: Callable[[], Iterator[np.ndarray]], backbone: str = "backbone"
) -> dict[str, np.ndarray]:
    """Add to each BatchNorm beta of `network`'s `backbone` (in place) the mean output its
    convolution loses to int8 weight rounding on `images` (float32 [1, H, W, 3], 0..255). Returns the
    corrections by BatchNorm name; nothing changes (and {}) in a network without that backbone."""
    try:
        model = network.get_layer(backbone)
        preprocess = network.get_layer("preprocess")
    except ValueError:
        return {}
    pairs = conv_bn_pairs(model)
    if not pairs:
        return {}
    probe = keras.Model(model.input, [conv.input for conv, _ in pairs])
    errors = [
        rounding_error(conv.get_weights()[0], fold(bn), isinstance(conv, keras.layers.DepthwiseConv2D))
        for conv, bn in pairs
    ]
    totals = [np.zeros(len(bn.get_weights()[0]), np.float64) for _, bn in pairs]
    count = 0
    for batch in _batches(images(), BATCH):
        inputs = probe(preprocess(batch), training=False)
        inputs = inputs if len(pairs) > 1 else [inputs]  # a model of one output returns it bare
        for total, (conv, _), error, x in zip(totals, pairs, errors, inputs, strict=True):
            total += np.asarray(_convolve(conv, x, error)).sum(axis=0).mean(axis=(0, 1))
        count += len(batch)
    if not count:
        return {}
    corrections = {}
    for (_, bn), total in zip(pairs, totals, strict=True):
        gamma, beta, mean, variance = bn.get_weights()
        shift = (total / count).astype(np.float32)
        bn.set_weights([gamma, beta + shift, mean, variance])
        corrections[bn.name] = shift
    return corrections
