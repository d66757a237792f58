"""SSD MobileNet v2 with SSDLite heads, as ftc-ml trained it (320x320 by default).

Features: block_13_expand_relu (stride 16) and out_relu (stride 32) of MobileNetV2, then four
extra layers down to 1x1, each 1x1 conv -> 3x3 depthwise stride 2 -> 1x1 conv. Each of the six
levels has a depthwise-separable box head and class head.

`ssd_mobilenet_v2_s8_320` adds a seventh level in front: block_6_expand_relu (stride 8, 40 x 40 on
a 320 input) with small and thin anchors (trainer/anchors.py SMALL_OBJECT_SHAPES), for objects
smaller than the 32 px that the plain SSD's smallest anchor covers.

`ssd_mobilenet_v2_s8td_320` is the same with a top-down path into that level: block_13_expand_relu
(stride 16, eight blocks deeper) through a 1x1 conv, upsampled and added to a 1x1 conv of
block_6_expand_relu, so a small object is placed on the fine grid with the context of the deep one
(the lateral and top-down halves of a feature pyramid, for one level).
"""

from __future__ import annotations

import keras
from keras import layers

from trainer.anchors import SMALL_OBJECT_SHAPES, small_object_anchors, ssd_anchors, ssd_anchors_per_cell
from trainer.config import TrainConfig
from trainer.models.backbone import backbone_features, set_bn_momentum
from trainer.models.batchnorm import fuse_batch_norms
from trainer.models.detector import Detector

EXTRA_CHANNELS = ((256, 512), (128, 256), (128, 256), (64, 128))
WEIGHT_DECAY = keras.regularizers.L2(4e-5)


def conv_bn(x, filters: int, kernel: int, stride: int = 1, name: str = "", depthwise: bool = False):
    if depthwise:
        x = layers.DepthwiseConv2D(
            kernel,
            stride,
            padding="same",
            use_bias=False,
            depthwise_regularizer=WEIGHT_DECAY,
            name=f"{name}_dw",
        )(x)
    else:
        x = layers.Conv2D(
            filters,
            kernel,
            stride,
            padding="same",
            use_bias=False,
            kernel_regularizer=WEIGHT_DECAY,
            name=f"{name}_conv",
        )(x)
    x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


def separable_head(x, outputs: int, name: str, bias_init: float = 0.0):
    """SSDLite predictor: 3x3 depthwise + BN + ReLU6, then a 1x1 conv to the predictions."""
    x = conv_bn(x, 0, 3, name=f"{name}_pre", depthwise=True)
    return layers.Conv2D(
        outputs,
        1,
        padding="same",
        kernel_regularizer=WEIGHT_DECAY,
        bias_initializer=keras.initializers.Constant(bias_init),
        name=name,
    )(x)


def flatten_predictions(maps, per_anchor: int, name: str):
    flat = [layers.Reshape((-1, per_anchor), name=f"{name}_flat{i}")(m) for i, m in enumerate(maps)]
    return layers.Concatenate(axis=1, name=name)(flat)


# Prior probability of an object for the class bias (focal-loss init): log(0.01 / 0.99).
PRIOR_BIAS = -4.595


def build_ssd_mobilenet_v2(config: TrainConfig) -> Detector:
    return _build(config, stride8=False)


def build_ssd_mobilenet_v2_s8(config: TrainConfig) -> Detector:
    return _build(config, stride8=True)


def build_ssd_mobilenet_v2_s8td(config: TrainConfig) -> Detector:
    return _build(config, stride8=True, top_down=True)


TOP_DOWN_CHANNELS = 96


def _top_down(fine, coarse, channels: int):
    """A feature-pyramid merge: 1x1 convs of both maps, the coarse one upsampled to the fine grid."""
    lateral = conv_bn(fine, channels, 1, name="s8_lateral")
    top = conv_bn(coarse, channels, 1, name="s8_top")
    height, width = int(fine.shape[1]), int(fine.shape[2])
    top = layers.Resizing(height, width, interpolation="nearest", name="s8_upsample")(top)
    return layers.Add(name="s8_merge")([lateral, top])


def _build(config: TrainConfig, stride8: bool, top_down: bool = False) -> Detector:
    alpha = config.alpha
    names = ("block_6_expand_relu",) * stride8 + ("block_13_expand_relu", "out_relu")
    images, maps = backbone_features(config, names)
    y = maps[-1]
    shrink = min(1.0, max(alpha, 0.25))  # narrower extras for narrow test models
    for i, (mid, out) in enumerate(EXTRA_CHANNELS):
        y = conv_bn(y, max(16, int(mid * shrink)), 1, name=f"extra{i}_a")
        y = conv_bn(y, 0, 3, 2, name=f"extra{i}_b", depthwise=True)
        y = conv_bn(y, max(16, int(out * shrink)), 1, name=f"extra{i}_c")
        maps.append(y)
    if top_down:
        maps[0] = _top_down(maps[0], maps[1], max(16, int(TOP_DOWN_CHANNELS * shrink)))

    per_cell = [len(SMALL_OBJECT_SHAPES)] * stride8 + ssd_anchors_per_cell(len(maps) - stride8)
    num_classes = config.num_classes
    # the plain SSD's heads keep their names (box_head0 is stride 16); the stride-8 one is *_s8
    tags = ["_s8"] * stride8 + [str(i) for i in range(len(maps) - stride8)]
    box_maps = [
        separable_head(m, a * 4, f"box_head{t}") for m, a, t in zip(maps, per_cell, tags, strict=True)
    ]
    cls_maps = [
        separable_head(m, a * num_classes, f"class_head{t}", PRIOR_BIAS)
        for m, a, t in zip(maps, per_cell, tags, strict=True)
    ]
    boxes = flatten_predictions(box_maps, 4, "box_encodings")
    logits = flatten_predictions(cls_maps, num_classes, "class_logits")
    network = keras.Model(images, [boxes, logits], name=config.model)
    set_bn_momentum(network, config.bn_momentum)
    fuse_batch_norms(network)
    grids = [int(m.shape[1]) for m in maps]
    sizes = tuple(g * g * a for g, a in zip(grids, per_cell, strict=True))
    anchors = small_object_anchors(grids) if stride8 else ssd_anchors(grids)
    return Detector(network, anchors, config, sizes)
