"""Box encoding follows the TFLite post-process convention; matching covers every object."""

from __future__ import annotations

import numpy as np
import pytest
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


# -- ATSS -------------------------------------------------------------------------------------------

SSD_GRIDS = [20, 10, 5, 3, 2, 1]
SSD_SIZES = tuple(g * g * a for g, a in zip(SSD_GRIDS, ssd_anchors_per_cell(6), strict=True))


def _atss_reference(gt: np.ndarray, anchors: np.ndarray, sizes: tuple[int, ...], k: int = 9) -> np.ndarray:
    """ATSS written out with loops: the index of each anchor's object, or -1 for background."""
    corners = np.concatenate([anchors[:, :2] - anchors[:, 2:] / 2, anchors[:, :2] + anchors[:, 2:] / 2], 1)
    overlaps = box_coder.iou(tf.constant(gt), tf.constant(corners)).numpy()
    score = np.full(overlaps.shape, -1.0)
    for g, (ymin, xmin, ymax, xmax) in enumerate(gt):
        centre = np.array([(ymin + ymax) / 2, (xmin + xmax) / 2])
        distance = ((anchors[:, :2] - centre) ** 2).sum(1)
        candidates, start = [], 0
        for size in sizes:
            candidates += list(start + np.argsort(distance[start : start + size], kind="stable")[:k])
            start += size
        ious = overlaps[g, candidates]
        threshold = ious.mean() + ious.std()
        for a, value in zip(candidates, ious, strict=True):
            cy, cx = anchors[a, :2]
            if value >= threshold and ymin < cy < ymax and xmin < cx < xmax:
                score[g, a] = value
        score[g, overlaps[g].argmax()] = 2.0
    owner = score.argmax(0)
    return np.where(score.max(0) >= 0, owner, -1)


def test_atss_agrees_with_a_loop_by_loop_reference() -> None:
    anchors = ssd_anchors(SSD_GRIDS)
    rng = np.random.default_rng(5)
    for _ in range(5):
        m = int(rng.integers(1, 6))
        corner = rng.uniform(0.0, 0.7, (m, 2))
        gt = np.concatenate([corner, corner + rng.uniform(0.02, 0.3, (m, 2))], 1).astype(np.float32)
        classes = np.arange(1, m + 1, dtype=np.int32)
        boxes, got, weights = box_coder.match_atss(
            tf.constant(gt), tf.constant(classes), tf.constant(anchors), SSD_SIZES
        )
        owner = _atss_reference(gt, anchors, SSD_SIZES)
        np.testing.assert_array_equal(got.numpy(), np.where(owner >= 0, owner + 1, 0))
        assert weights.numpy().min() == 1.0  # ATSS ignores no anchor
        positive = owner >= 0
        expected = box_coder.encode(tf.constant(gt[owner[positive]]), tf.constant(anchors[positive])).numpy()
        np.testing.assert_allclose(boxes.numpy()[positive], expected, rtol=1e-5, atol=1e-5)


def test_atss_gives_a_thin_post_several_anchors_where_the_iou_rule_gives_one() -> None:
    anchors = tf.constant(ssd_anchors(SSD_GRIDS))
    # A gate's post as robosub's qual_gate boxes are at 320 px (median 111 x 12 px): no SSD anchor
    # reaches IoU 0.5 with 99% of them.
    post = tf.constant([[0.2, 0.456, 0.55, 0.494]])
    _, by_iou, _ = box_coder.match(post, tf.constant([1]), anchors)
    _, by_atss, _ = box_coder.match_atss(post, tf.constant([1]), anchors, SSD_SIZES)
    assert (by_iou.numpy() > 0).sum() == 1
    assert (by_atss.numpy() > 0).sum() >= 3


def test_atss_without_objects_is_all_background() -> None:
    anchors = tf.constant(ssd_anchors(SSD_GRIDS))
    _, classes, weights = box_coder.match_atss(tf.zeros([0, 4]), tf.zeros([0], tf.int32), anchors, SSD_SIZES)
    assert classes.numpy().sum() == 0 and weights.numpy().min() == 1.0


def test_target_bound_is_the_largest_encoding_an_object_asks_of_an_anchor() -> None:
    """One anchor (centre 0.5, 0.5, size 0.5) and one box 0.2 x 0.2 centred at (0.5, 0.4): the box
    takes the anchor (forced match), encoded (0, -2, 5 ln 0.4, 5 ln 0.4); a photo without boxes
    asks nothing."""
    from trainer.config import TrainConfig
    from trainer.data import Sample
    from trainer.models.detector import Detector

    anchors = np.array([[0.5, 0.5, 0.5, 0.5]], np.float32)
    detector = Detector(None, anchors, TrainConfig(labels=("a",)), (1,))  # type: ignore[arg-type]

    def sample(boxes: list[list[float]]) -> Sample:
        return Sample("k", bytes, np.array(boxes, np.float32).reshape(-1, 4), np.ones(len(boxes), np.int32))

    expected = abs(5 * np.log(0.2 / 0.5))  # 4.58, larger than the centre's 2
    bound = detector.target_bound([sample([[0.4, 0.3, 0.6, 0.5]]), sample([])])
    assert bound == pytest.approx(expected, rel=1e-5)
    assert detector.target_bound([sample([])]) is None
