"""The IoU losses and the quality focal loss behave as their papers define them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from trainer.anchors import ssd_anchors
from trainer.box_coder import encode
from trainer.loss import ciou_loss, detection_loss, focal_loss, giou_loss, iou_of, quality_focal_loss

TRUTH = tf.constant([0.2, 0.2, 0.6, 0.6])


def test_a_perfect_box_costs_nothing() -> None:
    assert float(ciou_loss(TRUTH, TRUTH)) == pytest.approx(0.0, abs=1e-6)
    assert float(giou_loss(TRUTH, TRUTH)) == pytest.approx(0.0, abs=1e-6)


def test_ciou_tells_apart_boxes_that_giou_scores_the_same() -> None:
    """Two boxes inside the truth with the same area (so the same IoU and GIoU): CIoU prefers the
    one with the truth's centre and shape."""
    centred = tf.constant([0.3, 0.3, 0.5, 0.5])  # same centre and aspect as the truth
    corner = tf.constant([0.2, 0.2, 0.3, 0.6])  # same area, off-centre, flat
    assert float(iou_of(centred, TRUTH)) == pytest.approx(float(iou_of(corner, TRUTH)))
    assert float(giou_loss(centred, TRUTH)) == pytest.approx(float(giou_loss(corner, TRUTH)))
    assert float(ciou_loss(centred, TRUTH)) < float(ciou_loss(corner, TRUTH)) - 0.05


def test_quality_focal_loss_is_lowest_when_the_score_equals_the_iou() -> None:
    targets = tf.constant([[1]])
    weights = tf.constant([[1.0]])
    quality = tf.constant([[0.7]])

    def loss(p: float) -> float:
        logit = float(np.log(p / (1 - p)))
        return float(quality_focal_loss(tf.constant([[[logit, -9.0]]]), targets, quality, weights))

    assert loss(0.7) < loss(0.5) and loss(0.7) < loss(0.9)
    assert loss(0.7) < 1e-6  # |y - sigma|^beta is zero at the target


def test_quality_focal_loss_on_background_is_the_focal_term() -> None:
    logits = tf.constant([[[0.3, -1.0]]])
    none = tf.constant([[0]])
    weights = tf.constant([[1.0]])
    qfl = float(quality_focal_loss(logits, none, tf.zeros([1, 1]), weights))
    p = tf.sigmoid(logits)
    expected = float(tf.reduce_sum(p * p * -tf.math.log(1 - p)))  # beta = 2, target 0
    assert qfl == pytest.approx(expected, rel=1e-5)
    assert focal_loss(logits, none, weights) > 0


@pytest.mark.parametrize(("classes", "iou"), [("focal", "giou"), ("quality", "ciou")])
def test_detection_loss_options_give_finite_losses_that_fall_as_boxes_improve(classes, iou) -> None:
    anchors = tf.constant(ssd_anchors([2, 1]))
    n = anchors.shape[0]
    truth = tf.tile(TRUTH[None], [n, 1])
    targets = encode(truth, anchors)[None]
    class_targets = tf.constant([[1] + [0] * (n - 1)])
    weights = tf.ones([1, n])
    logits = tf.fill([1, n, 2], -2.0)

    def total(noise: float) -> float:
        pred = targets + noise
        losses = detection_loss(pred, logits, targets, class_targets, weights, anchors, classes, iou, 2.0)
        assert all(np.isfinite(float(v)) for v in losses.values())
        return float(losses["total"])

    assert total(0.0) < total(0.5) < total(2.0)
