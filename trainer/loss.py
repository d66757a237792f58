"""SSD loss: sigmoid focal loss for classes plus Huber and GIoU losses for boxes, over positives."""

from __future__ import annotations

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


def giou_loss(pred: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """1 - generalised IoU of corner boxes [..., 4] (elementwise)."""
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
    iou = inter / tf.maximum(union, 1e-8)
    hull_h = tf.maximum(pred[..., 2], target[..., 2]) - tf.minimum(pred[..., 0], target[..., 0])
    hull_w = tf.maximum(pred[..., 3], target[..., 3]) - tf.minimum(pred[..., 1], target[..., 1])
    hull = tf.maximum(hull_h * hull_w, 1e-8)
    return 1.0 - (iou - (hull - union) / hull)


def detection_loss(
    box_pred: tf.Tensor,
    logits: tf.Tensor,
    box_targets: tf.Tensor,
    class_targets: tf.Tensor,
    weights: tf.Tensor,
    anchors: tf.Tensor,
    giou_weight: float = 1.0,
) -> dict[str, tf.Tensor]:
    """Per-batch losses, normalised by the number of positive anchors (at least 1)."""
    positive = tf.cast(class_targets > 0, tf.float32)
    num_pos = tf.maximum(tf.reduce_sum(positive), 1.0)
    cls = focal_loss(logits, class_targets, weights) / num_pos
    diff = tf.abs(box_pred - box_targets)
    huber = tf.reduce_sum(tf.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5), axis=-1)
    huber = tf.reduce_sum(huber * positive) / num_pos
    loss = {"class": cls, "box": huber}
    if giou_weight:
        pred_boxes = box_coder.decode(box_pred, anchors)
        true_boxes = box_coder.decode(box_targets, anchors)
        loss["giou"] = giou_weight * tf.reduce_sum(giou_loss(pred_boxes, true_boxes) * positive) / num_pos
    loss["total"] = tf.add_n(list(loss.values()))
    return loss
