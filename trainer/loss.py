"""SSD loss over the matched anchors: classes and boxes.

classes  sigmoid focal loss (`focal`), or quality focal loss (`quality`: the target of a positive
         anchor is the IoU of its decoded box with the truth, so the score ranks well-placed boxes
         first and NMS keeps them; Li et al., Generalized Focal Loss, 2020)
boxes    Huber on the op's encodings, plus an IoU loss on the decoded boxes: GIoU, or CIoU (adds the
         distance between centres and the difference in aspect ratio; Zheng et al., 2020)
"""

from __future__ import annotations

import math

import tensorflow as tf

from trainer import box_coder


def focal_loss(
    logits: tf.Tensor, targets: tf.Tensor, weights: tf.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> tf.Tensor:
    """logits [B, N, C], targets [B, N] in 0..C (0 = background), weights [B, N] -> summed loss."""
    num_classes = tf.shape(logits)[-1]
    onehot = tf.one_hot(targets - 1, num_classes)  # background -> all zeros
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=onehot, logits=logits)
    p = tf.sigmoid(logits)
    p_t = onehot * p + (1 - onehot) * (1 - p)
    alpha_t = onehot * alpha + (1 - onehot) * (1 - alpha)
    loss = alpha_t * tf.pow(1 - p_t, gamma) * ce
    return tf.reduce_sum(tf.reduce_sum(loss, axis=-1) * weights)


def quality_focal_loss(
    logits: tf.Tensor, targets: tf.Tensor, quality: tf.Tensor, weights: tf.Tensor, beta: float = 2.0
) -> tf.Tensor:
    """logits [B, N, C], targets [B, N] in 0..C, quality [B, N] (IoU in 0..1, no gradient) -> summed loss."""
    num_classes = tf.shape(logits)[-1]
    soft = tf.one_hot(targets - 1, num_classes) * quality[..., None]  # background -> all zeros
    ce = tf.nn.sigmoid_cross_entropy_with_logits(labels=soft, logits=logits)
    loss = tf.pow(tf.abs(soft - tf.sigmoid(logits)), beta) * ce
    return tf.reduce_sum(tf.reduce_sum(loss, axis=-1) * weights)


def _overlap(pred: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """IoU and union area of corner boxes [..., 4] (elementwise)."""
    inter_h = tf.maximum(
        tf.minimum(pred[..., 2], target[..., 2]) - tf.maximum(pred[..., 0], target[..., 0]), 0.0
    )
    inter_w = tf.maximum(
        tf.minimum(pred[..., 3], target[..., 3]) - tf.maximum(pred[..., 1], target[..., 1]), 0.0
    )
    inter = inter_h * inter_w
    area_p = tf.maximum(pred[..., 2] - pred[..., 0], 0.0) * tf.maximum(pred[..., 3] - pred[..., 1], 0.0)
    area_t = (target[..., 2] - target[..., 0]) * (target[..., 3] - target[..., 1])
    union = area_p + area_t - inter
    return inter / tf.maximum(union, 1e-8), union


def iou_of(pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    return _overlap(pred, target)[0]


def _hull(pred: tf.Tensor, target: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Height and width of the smallest box enclosing both corner boxes [..., 4] (elementwise)."""
    hull_h = tf.maximum(pred[..., 2], target[..., 2]) - tf.minimum(pred[..., 0], target[..., 0])
    hull_w = tf.maximum(pred[..., 3], target[..., 3]) - tf.minimum(pred[..., 1], target[..., 1])
    return hull_h, hull_w


def giou_loss(pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """1 - generalised IoU of corner boxes [..., 4] (elementwise)."""
    iou, union = _overlap(pred, target)
    hull_h, hull_w = _hull(pred, target)
    hull = tf.maximum(hull_h * hull_w, 1e-8)
    return 1.0 - (iou - (hull - union) / hull)


def ciou_loss(pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """1 - complete IoU of corner boxes [..., 4] (elementwise)."""
    iou, _ = _overlap(pred, target)
    hull_h, hull_w = _hull(pred, target)
    diagonal = hull_h * hull_h + hull_w * hull_w + 1e-8
    dy = (pred[..., 0] + pred[..., 2] - target[..., 0] - target[..., 2]) / 2
    dx = (pred[..., 1] + pred[..., 3] - target[..., 1] - target[..., 3]) / 2
    h_p = tf.maximum(pred[..., 2] - pred[..., 0], 1e-8)
    w_p = tf.maximum(pred[..., 3] - pred[..., 1], 1e-8)
    h_t = tf.maximum(target[..., 2] - target[..., 0], 1e-8)
    w_t = tf.maximum(target[..., 3] - target[..., 1], 1e-8)
    v = (4 / math.pi**2) * tf.square(tf.atan(w_t / h_t) - tf.atan(w_p / h_p))
    alpha = tf.stop_gradient(v / tf.maximum(1.0 - iou + v, 1e-8))
    return 1.0 - iou + (dy * dy + dx * dx) / diagonal + alpha * v


def detection_loss(
    box_pred: tf.Tensor,
    logits: tf.Tensor,
    box_targets: tf.Tensor,
    class_targets: tf.Tensor,
    weights: tf.Tensor,
    anchors: tf.Tensor,
    classes: str = "focal",
    iou: str = "giou",
    iou_weight: float = 1.0,
    huber_weight: float = 1.0,
) -> dict[str, tf.Tensor]:
    """Per-batch losses, normalised by the number of positive anchors (at least 1).

    The keys are "class", "box" (Huber), "giou" (whichever IoU loss: the name the logs and curves
    have always used) and "total".
    """
    positive = tf.cast(class_targets > 0, tf.float32)
    num_pos = tf.maximum(tf.reduce_sum(positive), 1.0)
    pred_boxes = box_coder.decode(box_pred, anchors)
    true_boxes = box_coder.decode(box_targets, anchors)
    if classes == "quality":
        quality = tf.stop_gradient(iou_of(pred_boxes, true_boxes)) * positive
        cls = quality_focal_loss(logits, class_targets, quality, weights) / num_pos
    else:
        cls = focal_loss(logits, class_targets, weights) / num_pos
    diff = tf.abs(box_pred - box_targets)
    huber = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5), axis=-1)
    huber = huber_weight * tf.reduce_sum(huber * positive) / num_pos
    loss = {"class": cls, "box": huber}
    if iou_weight:
        iou_loss = ciou_loss if iou == "ciou" else giou_loss
        loss["giou"] = iou_weight * tf.reduce_sum(iou_loss(pred_boxes, true_boxes) * positive) / num_pos
    loss["total"] = tf.add_n(list(loss.values()))
    return loss
