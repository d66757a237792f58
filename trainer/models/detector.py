"""A detector: a Keras network plus the anchors its outputs refer to."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

import keras
import numpy as np
import tensorflow as tf

from trainer import box_coder
from trainer.config import TrainConfig
from trainer.data import Sample

# The exported box encodings are clipped to this times the largest a training object asks of an
# anchor (trainer/export.py::save_module): room for objects a little beyond the training photos'.
BOX_BOUND_MARGIN = 1.5


@dataclass
class Detector:
    """`network` maps float32 images [B, H, W, 3] with values 0..255 (RGB) to
    (box encodings [B, N, 4] as (ty, tx, th, tw), class logits [B, N, C], sigmoid, no background).
    `anchors` is [N, 4] (ycenter, xcenter, h, w), normalised; `level_sizes` how many of them belong
    to each feature map, in order.
    """

    network: keras.Model
    anchors: np.ndarray
    config: TrainConfig
    level_sizes: tuple[int, ...]
    # Which anchors learn which object: the config's choice unless the model is built for one
    assigner: str = ""

    def match(self, gt_boxes: tf.Tensor, gt_classes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """One image's training targets, by the config's assigner (trainer/box_coder.py)."""
        anchors = tf.constant(self.anchors)
        if (self.assigner or self.config.assigner) == "atss":
            return box_coder.match_atss(gt_boxes, gt_classes, anchors, self.level_sizes)
        return box_coder.match(gt_boxes, gt_classes, anchors)

    @cached_property
    def traced_match(self) -> Callable[[tf.Tensor, tf.Tensor], tuple[tf.Tensor, tf.Tensor, tf.Tensor]]:
        """`match` as one traced function, shared by every caller outside the training step
        (eager matching over robosub's training photos took 12.7 s, traced 3.4 s)."""
        return tf.function(self.match, reduce_retracing=True)

    def target_bound(self, samples: Sequence[Sample]) -> float | None:
        """The largest |box encoding| (any of ty, tx, th, tw) that training asks of an anchor: over
        every positive anchor of `samples`' boxes, as they are. None when they have no boxes."""
        largest = None
        for sample in samples:
            if len(sample.boxes):
                boxes = tf.constant(sample.boxes.reshape(-1, 4), tf.float32)
                targets, classes, _ = self.traced_match(boxes, tf.constant(sample.classes, tf.int32))
                positive = tf.boolean_mask(targets, classes > 0)
                if positive.shape[0]:
                    value = float(tf.reduce_max(tf.abs(positive)))
                    largest = value if largest is None else max(largest, value)
        return largest

    def box_bound(self, samples: Sequence[Sample]) -> float | None:
        """Where the export clips the box encodings: BOX_BOUND_MARGIN x `target_bound(samples)`."""
        largest = self.target_bound(samples)
        return None if largest is None else BOX_BOUND_MARGIN * largest
