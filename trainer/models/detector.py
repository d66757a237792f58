"""A detector: a Keras network plus the anchors its outputs refer to."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np

from trainer.config import TrainConfig


@dataclass
class Detector:
    """`network` maps float32 images [B, H, W, 3] with values 0..255 (RGB) to
    (box encodings [B, N, 4] as (ty, tx, th, tw), class logits [B, N, C], sigmoid, no background).
    `anchors` is [N, 4] (ycenter, xcenter, h, w), normalised.
    """

    network: keras.Model
    anchors: np.ndarray
    config: TrainConfig
