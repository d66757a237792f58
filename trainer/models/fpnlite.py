"""SSD MobileNet v2 FPN-Lite 320: a light feature pyramid on MobileNetV2, weight-shared heads.

Levels P3-P7 (strides 8 to 128): P3-P5 from block_6_expand_relu, block_13_expand_relu and out_relu
through 1x1 laterals and a top-down path (nearest upsampling, add, depthwise-separable smoothing);
P6 and P7 by stride-2 depthwise-separable convs. The box and class towers are shared by all levels,
so small and large objects train the same weights. Slower than the plain SSD, better on small objects.

`ssd_mobilenet_v2_fpnlite_p3p6_320` is the same pyramid from P3 to P6 with one prior per cell and
ATSS assignment (see build_fpnlite_p3p6).
"""

from __future__ import annotations

import keras
from keras import layers

from trainer.anchors import fpn_anchors, fpn_anchors_per_cell, prior_anchors
from trainer.config import TrainConfig
from trainer.models.backbone import backbone_features, set_bn_momentum
from trainer.models.batchnorm import fuse_batch_norms
from trainer.models.detector import Detector
from trainer.models.ssd_mobilenet_v2 import PRIOR_BIAS, WEIGHT_DECAY, flatten_predictions

FEATURE_LAYERS = ("block_6_expand_relu", "block_13_expand_relu", "out_relu")


def separable(x, channels: int, stride: int, name: str):
    x = layers.SeparableConv2D(
        channels,
        3,
        stride,
        padding="same",
        use_bias=False,
        depthwise_regularizer=WEIGHT_DECAY,
        pointwise_regularizer=WEIGHT_DECAY,
        name=name,
    )(x)
    x = layers.BatchNormalization(epsilon=1e-3, name=f"{name}_bn")(x)
    return layers.ReLU(6.0, name=f"{name}_relu")(x)


class SharedTower:
    """Depthwise-separable conv layers applied to every level with the same weights."""

    def __init__(self, channels: int, depth: int, outputs: int, name: str, bias: float) -> None:
        self.convs = [
            layers.SeparableConv2D(
                channels,
                3,
                padding="same",
                use_bias=False,
                depthwise_regularizer=WEIGHT_DECAY,
                pointwise_regularizer=WEIGHT_DECAY,
                name=f"{name}_tower{i}",
            )
            for i in range(depth)
        ]
        self.predict = layers.SeparableConv2D(
            outputs,
            3,
            padding="same",
            depthwise_regularizer=WEIGHT_DECAY,
            bias_initializer=keras.initializers.Constant(bias),
            name=name,
        )
        self.name = name

    def __call__(self, x, level: int):
        for i, conv in enumerate(self.convs):
            x = conv(x)
            # BatchNorm statistics differ per level, so only the convolutions are shared
            x = layers.BatchNormalization(epsilon=1e-3, name=f"{self.name}_tower{i}_bn_p{level}")(x)
            x = layers.ReLU(6.0, name=f"{self.name}_tower{i}_relu_p{level}")(x)
        return self.predict(x)


def pyramid(config: TrainConfig, channels: int, extra_levels: int) -> tuple[keras.KerasTensor, list]:
    """The model input and the feature maps P3-P5 (top-down path) plus `extra_levels` stride-2 levels."""
    images, (c3, c4, c5) = backbone_features(config, FEATURE_LAYERS)
    laterals = [
        layers.Conv2D(channels, 1, kernel_regularizer=WEIGHT_DECAY, name=f"lateral{i}")(c)
        for i, c in zip((3, 4, 5), (c3, c4, c5), strict=True)
    ]
    p5 = laterals[2]
    p4 = layers.Add(name="topdown4")([laterals[1], layers.UpSampling2D(2, name="up5")(p5)])
    p3 = layers.Add(name="topdown3")([laterals[0], layers.UpSampling2D(2, name="up4")(p4)])
    maps = [separable(p, channels, 1, f"smooth{i}") for i, p in zip((3, 4, 5), (p3, p4, p5), strict=True)]
    for level in range(6, 6 + extra_levels):
        maps.append(separable(maps[-1], channels, 2, f"p{level}"))
    return images, maps


def _detector(config: TrainConfig, images, maps: list, per_cell: int, channels: int, anchors_for) -> Detector:
    box_tower = SharedTower(channels, 2, per_cell * 4, "box_head", 0.0)
    cls_tower = SharedTower(channels, 2, per_cell * config.num_classes, "class_head", PRIOR_BIAS)
    boxes = flatten_predictions([box_tower(p, i + 3) for i, p in enumerate(maps)], 4, "box_encodings")
    logits = flatten_predictions(
        [cls_tower(p, i + 3) for i, p in enumerate(maps)], config.num_classes, "class_logits"
    )
    network = keras.Model(images, [boxes, logits], name=config.model)
    set_bn_momentum(network, config.bn_momentum)
    fuse_batch_norms(network)
    grids = [int(p.shape[1]) for p in maps]
    return Detector(network, anchors_for(grids), config, tuple(g * g * per_cell for g in grids))


def build_fpnlite(config: TrainConfig) -> Detector:
    channels = config.head_channels or max(32, int(128 * min(1.0, config.alpha)))
    images, maps = pyramid(config, channels, extra_levels=2)
    return _detector(config, images, maps, fpn_anchors_per_cell(), channels, fpn_anchors)


def build_fpnlite_p3p6(config: TrainConfig) -> Detector:
    """P3-P6 (strides 8 to 64), one square prior per cell, ATSS assignment whatever the config says.

    Built for small objects: a 28 x 15 px buoy on a 320 input overlaps no SSD anchor at IoU 0.5, but it
    sits in a stride-8 cell whose 32 px prior ATSS makes positive, with the cells around it. Few priors
    (2,125, against SSD's 2,034 and FPN-Lite's 12,804) keep the op's NMS cheap.
    """
    channels = config.head_channels or max(32, int(96 * min(1.0, config.alpha)))
    images, maps = pyramid(config, channels, extra_levels=1)
    detector = _detector(config, images, maps, 1, channels, prior_anchors)
    detector.assigner = "atss"
    return detector
