"""The Python post-process does what the fused TFLite op does: fast NMS is class-agnostic."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from trainer.box_coder import encode
from trainer.config import TrainConfig
from trainer.models.detector import Detector
from trainer.postprocess import PostProcess, make_predict_fn

BOXES = [[0.2, 0.2, 0.4, 0.4], [0.21, 0.21, 0.41, 0.41], [0.6, 0.6, 0.8, 0.8]]
ANCHORS = np.array([[0.3, 0.3, 0.2, 0.2], [0.31, 0.31, 0.2, 0.2], [0.7, 0.7, 0.2, 0.2]], np.float32)
# anchor 0: class 1 at 0.9; anchor 1 (the same place): class 2 at 0.8; anchor 2 elsewhere: class 1
SCORES = np.array([[0.9, 0.1], [0.1, 0.8], [0.7, 0.1]], np.float32)


class Fixed(keras.layers.Layer):
    """A 'network' that answers the same encodings and logits for any image."""

    def call(self, images):
        batch = tf.shape(images)[0]
        boxes = encode(
            tf.constant([[0.2, 0.2, 0.4, 0.4], [0.21, 0.21, 0.41, 0.41], [0.6, 0.6, 0.8, 0.8]]), ANCHORS
        )
        logits = tf.math.log(SCORES / (1 - SCORES))
        return tf.tile(boxes[None], [batch, 1, 1]), tf.tile(logits[None], [batch, 1, 1])


def detector() -> Detector:
    images = keras.Input((8, 8, 3))
    boxes, logits = Fixed()(images)
    return Detector(
        keras.Model(images, [boxes, logits]), ANCHORS, TrainConfig(labels=("a", "b")), (len(ANCHORS),)
    )


def detections(post: PostProcess) -> list[tuple[int, float]]:
    _boxes, scores, classes, valid, *_ = make_predict_fn(detector(), post)(np.zeros((1, 8, 8, 3)))
    n = int(valid[0])
    found = zip(classes[0, :n].numpy().tolist(), scores[0, :n].numpy().tolist(), strict=True)
    return sorted((int(c), round(float(s), 3)) for c, s in found)


def test_fast_nms_suppresses_across_classes_like_the_op() -> None:
    assert detections(PostProcess(score_threshold=0.5)) == [(0, 0.7), (0, 0.9)]


def test_regular_nms_suppresses_within_a_class_only() -> None:
    regular = PostProcess(score_threshold=0.5, use_regular_nms=True)
    assert detections(regular) == [(0, 0.7), (0, 0.9), (1, 0.8)]


def test_max_detections_caps_the_answer() -> None:
    assert detections(PostProcess(score_threshold=0.5, max_detections=1)) == [(0, 0.9)]
