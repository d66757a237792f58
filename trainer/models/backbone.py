"""The MobileNetV2 backbone, its starting weights, and the BatchNorm momentum fix."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import keras

from storage.errors import UserError
from trainer.config import NO_WEIGHTS, TrainConfig

log = logging.getLogger(__name__)


class WeightsUnavailable(UserError):
    """The requested backbone weights cannot be loaded."""


def mobilenet_v2(input_size: int, alpha: float, weights: str) -> keras.Model:
    """MobileNetV2 without its classifier; `weights` is 'imagenet', 'none' or a weights file path.

    Never falls back to random weights silently: a failed load raises WeightsUnavailable.
    """
    shape = (input_size, input_size, 3)
    if weights == "imagenet":
        try:
            return keras.applications.MobileNetV2(
                input_shape=shape, alpha=alpha, include_top=False, weights="imagenet"
            )
        except Exception as e:  # Keras raises plain Exception on a failed download
            raise WeightsUnavailable(
                f"Could not download the ImageNet MobileNetV2 weights ({e}). This machine may be offline. "
                "Use --weights PATH with a Keras MobileNetV2 weights file (for example "
                "mobilenet_v2_1.0_no_top.weights.h5), or --weights none to train from scratch "
                "(needs far more data and steps)."
            ) from e
    backbone = keras.applications.MobileNetV2(input_shape=shape, alpha=alpha, include_top=False, weights=None)
    if weights in NO_WEIGHTS:
        return backbone
    path = Path(weights)
    if not path.is_file():
        raise WeightsUnavailable(
            f"Weights file {path} does not exist. Give the path to a Keras MobileNetV2 weights file, "
            "'imagenet' to download them, or 'none' to train from scratch."
        )
    try:
        backbone.load_weights(str(path))
    except Exception as e:  # shape mismatch, wrong format
        raise WeightsUnavailable(
            f"Could not load {path} into MobileNetV2 (alpha {alpha}): {e}. The file must hold a "
            "MobileNetV2 without top of the same width (alpha)."
        ) from e
    log.info("loaded backbone weights from %s", path)
    return backbone


def freeze_until(backbone: keras.Model, layer_name: str) -> int:
    """Freeze the backbone's layers before `layer_name` (BatchNorm then runs in inference mode with
    its pretrained statistics). Returns how many layers were frozen."""
    names = [layer.name for layer in backbone.layers]
    if layer_name not in names:
        raise ValueError(f"freeze_until: no layer {layer_name!r} in {backbone.name}")
    cut = names.index(layer_name)
    for layer in backbone.layers[:cut]:
        layer.trainable = False
    return cut


def zero_init_residual(backbone: keras.Model) -> int:
    """Start every residual block as the identity: zero the scale (gamma) of the BatchNorm that ends
    its branch, so `x + branch(x)` is `x` until training moves it. Returns how many blocks."""
    blocks = [layer.name.removesuffix("_add") for layer in backbone.layers if layer.name.endswith("_add")]
    for block in blocks:
        bn = backbone.get_layer(f"{block}_project_BN")
        bn.gamma.assign(keras.ops.zeros_like(bn.gamma))
    return len(blocks)


def backbone_features(config: TrainConfig, layer_names: Sequence[str]) -> tuple[keras.KerasTensor, list]:
    """The model input (uint8-range RGB as float32) and the named MobileNetV2 feature maps.

    Pre-processing ([0, 255] -> [-1, 1]) is part of the model, so the deployed model takes raw pixels.
    With pretrained weights the layers before `config.freeze_until` are frozen.
    """
    size = config.input_size
    images = keras.Input((size, size, 3), name="images")
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0, name="preprocess")(images)
    backbone = mobilenet_v2(size, config.alpha, config.weights)
    if config.from_scratch:
        if config.zero_init_residual:
            zero_init_residual(backbone)
    elif config.freeze_until:
        freeze_until(backbone, config.freeze_until)
    features = keras.Model(
        backbone.input, [backbone.get_layer(n).output for n in layer_names], name="backbone"
    )
    return images, list(features(x))


def set_bn_momentum(model: keras.Model, momentum: float) -> int:
    """Set every BatchNormalization's momentum; returns how many layers changed.

    Keras' MobileNetV2 uses 0.999: over a few hundred steps the moving statistics barely move
    from their initial values, so evaluation (which uses them) collapses while training loss looks
    fine. A shorter horizon lets them follow the data.
    """
    n = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = momentum
            n += 1
    return n
