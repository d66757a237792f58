"""Box encoding in the convention of the TFLite detection post-process op, and anchor matching.

Two ways to choose an anchor's object (`TrainConfig.assigner`):
- "iou": SSD's rule. IoU >= 0.5 is positive, < 0.4 negative, between ignored; every object also takes
  its best anchor.
- "atss": adaptive training sample selection (Zhang et al., 2020, "Bridging the Gap Between
  Anchor-based and Anchor-free Detection"). Each object's candidates are the k anchors of each level
  whose centres are nearest its centre; those whose IoU is at least the candidates' mean + standard
  deviation, and whose centre lies inside the object, are positive; all other anchors are negative.
  Thin or oddly shaped objects (a gate's post) get several positives where the IoU rule gives one.

Boxes are (ymin, xmin, ymax, xmax) normalised to [0, 1]; anchors are (ycenter, xcenter, h, w).
Encodings are (ty, tx, th, tw) = (dy / ha * 10, dx / wa * 10, log(h / ha) * 5, log(w / wa) * 5),
the op's default y_scale = x_scale = 10 and h_scale = w_scale = 5.
"""

from __future__ import annotations

import tensorflow as tf

SCALES = (10.0, 10.0, 5.0, 5.0)  # y, x, h, w
POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.4
ATSS_TOP_K = 9  # candidates per level


def corners_to_center(boxes: tf.Tensor) -> tf.Tensor:
    ymin, xmin, ymax, xmax = tf.unstack(boxes, axis=-1)
    return tf.stack([(ymin + ymax) / 2, (xmin + xmax) / 2, ymax - ymin, xmax - xmin], axis=-1)


def center_to_corners(boxes: tf.Tensor) -> tf.Tensor:
    yc, xc, h, w = tf.unstack(boxes, axis=-1)
    return tf.stack([yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2], axis=-1)


def encode(boxes: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
    """Corner boxes [..., N, 4] matched to anchors [N, 4] -> encodings [..., N, 4]."""
    yc, xc, h, w = tf.unstack(corners_to_center(boxes), axis=-1)
    ya, xa, ha, wa = tf.unstack(anchors, axis=-1)
    h, w = tf.maximum(h, 1e-6), tf.maximum(w, 1e-6)
    return tf.stack(
        [
            (yc - ya) / ha * SCALES[0],
            (xc - xa) / wa * SCALES[1],
            tf.math.log(h / ha) * SCALES[2],
            tf.math.log(w / wa) * SCALES[3],
        ],
        axis=-1,
    )


def decode(encodings: tf.Tensor, anchors: tf.Tensor) -> tf.Tensor:
    """Encodings [..., N, 4] -> corner boxes [..., N, 4], as the TFLite op decodes them."""
    ty, tx, th, tw = tf.unstack(encodings, axis=-1)
    ya, xa, ha, wa = tf.unstack(anchors, axis=-1)
    th = tf.minimum(th, 20.0)  # exp overflow guard while training from scratch
    tw = tf.minimum(tw, 20.0)
    yc = ty / SCALES[0] * ha + ya
    xc = tx / SCALES[1] * wa + xa
    h = tf.exp(th / SCALES[2]) * ha
    w = tf.exp(tw / SCALES[3]) * wa
    return center_to_corners(tf.stack([yc, xc, h, w], axis=-1))


def iou(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Pairwise IoU of corner boxes a [M, 4] and b [N, 4] -> [M, N]."""
    a = a[:, None, :]
    b = b[None, :, :]
    inter_h = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    inter_w = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = inter_h * inter_w
    area_a = (a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1])
    area_b = (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1])
    return inter / tf.maximum(area_a + area_b - inter, 1e-8)


def match(
    gt_boxes: tf.Tensor, gt_classes: tf.Tensor, anchors: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Assign ground truth to anchors for one image.

    gt_boxes [M, 4] corners, gt_classes [M] int32 in 1..C, anchors [N, 4] center form.
    Returns (box targets [N, 4] encoded, class targets [N] int32 with 0 = background,
    weights [N] float32: 1 for positives and negatives, 0 for anchors ignored between thresholds).
    Every ground-truth box also claims its best anchor, so small objects are never unmatched.
    """
    n = tf.shape(anchors)[0]
    anchor_corners = center_to_corners(anchors)

    def no_objects() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return tf.zeros([n, 4]), tf.zeros([n], tf.int32), tf.ones([n])

    def with_objects() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        overlaps = iou(gt_boxes, anchor_corners)  # [M, N]
        best_gt = tf.argmax(overlaps, axis=0, output_type=tf.int32)  # [N]
        best_iou = tf.reduce_max(overlaps, axis=0)
        # force-match: each ground truth takes its best anchor
        best_anchor = tf.argmax(overlaps, axis=1, output_type=tf.int32)  # [M]
        m = tf.shape(gt_boxes)[0]
        best_gt = tf.tensor_scatter_nd_update(best_gt, best_anchor[:, None], tf.range(m))
        best_iou = tf.tensor_scatter_nd_update(best_iou, best_anchor[:, None], tf.ones([m]) * 2.0)
        positive = best_iou >= POSITIVE_IOU
        negative = best_iou < NEGATIVE_IOU
        classes = tf.where(positive, tf.gather(gt_classes, best_gt), 0)
        boxes = encode(tf.gather(gt_boxes, best_gt), anchors)
        boxes = tf.where(positive[:, None], boxes, 0.0)
        weights = tf.cast(positive | negative, tf.float32)
        return boxes, classes, weights

    return tf.cond(tf.shape(gt_boxes)[0] > 0, with_objects, no_objects)


def match_atss(
    gt_boxes: tf.Tensor,
    gt_classes: tf.Tensor,
    anchors: tf.Tensor,
    level_sizes: tuple[int, ...],
    top_k: int = ATSS_TOP_K,
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """As `match`, with ATSS's choice of positives (see the module docstring). `level_sizes` are the
    numbers of anchors of each level, in the anchors' order. Weights are all 1: no anchor is ignored."""
    n = tf.shape(anchors)[0]

    def no_objects() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        return tf.zeros([n, 4]), tf.zeros([n], tf.int32), tf.ones([n])

    def with_objects() -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        m = tf.shape(gt_boxes)[0]
        overlaps = iou(gt_boxes, center_to_corners(anchors))  # [M, N]
        centers = corners_to_center(gt_boxes)[:, :2]  # [M, 2]
        distance = tf.reduce_sum(tf.square(centers[:, None, :] - anchors[None, :, :2]), axis=-1)  # [M, N]
        candidates, start = [], 0
        for size in level_sizes:  # the k nearest anchors of each level
            _, nearest = tf.math.top_k(-distance[:, start : start + size], k=min(top_k, size))
            candidates.append(nearest + start)
            start += size
        candidate = tf.concat(candidates, axis=1)  # [M, K], distinct within a row
        candidate_iou = tf.gather(overlaps, candidate, batch_dims=1)  # [M, K]
        threshold = tf.reduce_mean(candidate_iou, axis=1) + tf.math.reduce_std(candidate_iou, axis=1)
        cy, cx = tf.unstack(tf.gather(anchors[:, :2], candidate), axis=-1)  # [M, K]
        ymin, xmin, ymax, xmax = (t[:, None] for t in tf.unstack(gt_boxes, axis=-1))
        inside = (cy > ymin) & (cy < ymax) & (cx > xmin) & (cx < xmax)
        chosen = (candidate_iou >= threshold[:, None]) & inside
        # IoU where an anchor is a positive of an object, -1 elsewhere; an anchor chosen by two
        # objects goes to the one it overlaps more. Every object keeps its best anchor.
        rows = tf.broadcast_to(tf.range(m)[:, None], tf.shape(candidate))
        score = tf.tensor_scatter_nd_update(
            tf.fill([m, n], -1.0), tf.stack([rows, candidate], axis=-1), tf.where(chosen, candidate_iou, -1.0)
        )
        best_anchor = tf.argmax(overlaps, axis=1, output_type=tf.int32)  # [M]
        score = tf.tensor_scatter_nd_update(
            score, tf.stack([tf.range(m), best_anchor], axis=-1), tf.fill([m], 2.0)
        )
        best_gt = tf.argmax(score, axis=0, output_type=tf.int32)  # [N]
        positive = tf.reduce_max(score, axis=0) >= 0.0
        classes = tf.where(positive, tf.gather(gt_classes, best_gt), 0)
        boxes = tf.where(positive[:, None], encode(tf.gather(gt_boxes, best_gt), anchors), 0.0)
        return boxes, classes, tf.ones([n])

    return tf.cond(tf.shape(gt_boxes)[0] > 0, with_objects, no_objects)
