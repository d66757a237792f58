"""Box encoding follows the TFLite post-process convention; matching covers every object."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from trainer import box_coder
from trainer.anchors import fpn_anchors, ssd_anchors, ssd_anchors_per_cell


def test_encode_decode_round_trip() -> None:
    anchors = tf.constant([[0.5, 0.5, 0.2, 0.3], [0.1, 0.9, 0.05, 0.1]])
    boxes = tf.constant([[0.3, 0.4, 0.7, 0.6], [0.05, 0.8, 0.12, 0.99]])
    np.testing.assert_allclose(box_coder.decode(box_coder.encode(boxes, anchors), anchors), boxes, atol=1e-6)


def test_encoding_uses_the_post_process_scales() -> None:
    anchor = tf.constant([[0.5, 0.5, 0.2, 0.2]])
    box = tf.constant([[0.42, 0.4, 0.62, 0.6]])  # centre moved down by 0.02 = 0.1 anchor heights
    np.testing.assert_allclose(box_coder.encode(box, anchor).numpy()[0], [0.1 * 10, 0, 0, 0], atol=1e-5)


def test_every_object_claims_an_anchor_even_when_tiny() -> None:
    anchors = tf.constant(ssd_anchors([4, 2, 1]))
    gt = tf.constant([[0.0, 0.0, 0.02, 0.02], [0.3, 0.3, 0.9, 0.9]])
    _boxes, classes, weights = box_coder.match(gt, tf.constant([1, 2]), anchors)
    assert set(classes.numpy()[classes.numpy() > 0]) == {1, 2}
    assert weights.shape == (anchors.shape[0],)


def test_image_without_objects_is_all_background() -> None:
    anchors = tf.constant(ssd_anchors([2, 1]))
    _boxes, classes, weights = box_coder.match(tf.zeros([0, 4]), tf.zeros([0], tf.int32), anchors)
    assert classes.numpy().sum() == 0 and weights.numpy().min() == 1.0


def test_anchor_counts_match_the_heads() -> None:
    grids = [20, 10, 5, 3, 2, 1]
    anchors = ssd_anchors(grids)
    assert len(anchors) == sum(g * g * a for g, a in zip(grids, ssd_anchors_per_cell(6), strict=True)) == 2034
    assert (anchors[:, 2:] > 0).all() and (anchors[:, :2] > 0).all() and (anchors[:, :2] < 1).all()
    assert len(fpn_anchors([40, 20, 10, 5, 3])) == (1600 + 400 + 100 + 25 + 9) * 6
