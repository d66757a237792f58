"""Equalize MobileNetV2's first layers before int8 export, without changing what the float network
computes.

Where robosub's int8 drop sat (bench/int8.py's re-exports of one model, 2026-11-25, README): with
MobileNetV2's first three layers (Conv1, expanded_conv's depthwise and projection, frozen ImageNet
weights) left in float, int8 mAP@0.5:0.95 was 0.000 below float instead of 0.024. TFLite gives each
activation tensor one int8 scale for all its channels, and there some channels are tiny beside the
others: after Conv1's ReLU6 most channels reach 6, a few 0.05-0.5, which then round to a handful of
levels; the projection's 16 linear channels span 19 to 36.

A channel's scale can move between a layer and the next without changing the network: multiply the
BatchNorm's gamma and beta of channel c by k, divide the next convolution's weights for input channel
c by k. Across a ReLU6 that is exact while k x the channel stays below 6, so a channel is scaled up
only to 6 / (HEADROOM x its largest value on the calibration images) (at most MAX_GAIN); a linear
channel is scaled to the widest one. The float model is unchanged (to float rounding; beyond
HEADROOM x the calibration's largest value a ReLU6 channel clips sooner), and each int8 channel gets
as many levels as the tensor's widest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import keras
import numpy as np

# (the BatchNorm whose channels are scaled, the convolution that reads them, a ReLU6 between them)
CHAIN = (
    ("bn_Conv1", "expanded_conv_depthwise", True),
    ("expanded_conv_depthwise_BN", "expanded_conv_project", True),
    ("expanded_conv_project_BN", "block_1_expand", False),
)
HEADROOM = 1.1
MAX_GAIN = 16.0
DEAD = 1e-3  # a channel no calibration image lights up is left alone


def equalize_stem(network: keras.Model, images: Callable[[], Iterator[np.ndarray]]) -> dict[str, np.ndarray]:
    """Scale the channels of CHAIN's BatchNorms in `network` (in place) as the module says; `images`
    are the int8 calibration images (float32 [1, H, W, 3], 0..255). Returns the gains by BatchNorm
    name; nothing changes (and {}) in a network without MobileNetV2's stem."""
    try:
        backbone = network.get_layer("backbone")
        preprocess = network.get_layer("preprocess")
        layers = {name: backbone.get_layer(name) for link in CHAIN for name in link[:2]}
    except ValueError:
        return {}
    probe = keras.Model(backbone.input, [layers[bn].output for bn, _, _ in CHAIN])
    largest: list[np.ndarray] | None = None
    for image in images():
        outputs = probe(preprocess(image), training=False)
        tops = [
            (np.asarray(out) if relu else np.abs(out)).max(axis=(0, 1, 2))
            for (_, _, relu), out in zip(CHAIN, outputs, strict=True)
        ]
        largest = tops if largest is None else [np.maximum(a, b) for a, b in zip(largest, tops, strict=True)]
    if largest is None:
        return {}
    gains = {}
    for (bn_name, next_name, relu), top in zip(CHAIN, largest, strict=True):
        lit = top > DEAD
        target = 6.0 / HEADROOM if relu else top.max()
        gain = np.where(lit, target / np.where(lit, top, 1.0), 1.0)
        gain = np.clip(gain, 1.0, MAX_GAIN).astype(np.float32)
        bn = layers[bn_name]
        gamma, beta, *statistics = bn.get_weights()
        bn.set_weights([gamma * gain, beta * gain, *statistics])
        conv = layers[next_name]
        kernel, *rest = conv.get_weights()  # [kh, kw, channels in, out or multiplier]
        conv.set_weights([kernel / gain[None, None, :, None], *rest])
        gains[bn_name] = gain
    return gains
