"""The TFLite detection post-process op: its settings, and the same decoding and NMS in TensorFlow.

The delivered models end in the fused TFLite_Detection_PostProcess op (trainer/export.py). Training
chooses its best checkpoint with `make_predict_fn`, which does what that op does with the same
settings, so the checkpoint chosen is judged by the boxes the robot will get:
- boxes decoded from the anchors with the op's centre-size coder, not clipped;
- fast NMS (`use_regular_nms=False`, one class per detection): each anchor keeps its best class
  score, then one class-agnostic NMS over all anchors keeps `max_detections`;
- regular NMS (`use_regular_nms=True`): NMS within each class, `detections_per_class` each.
The defaults are the TF Object Detection API's SSD settings (IoU 0.6, 100 detections).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from trainer import box_coder
from trainer.models.detector import Detector


@dataclass(frozen=True)
class PostProcess:
    """Attributes of the TFLite detection post-process op."""

    max_detections: int = 100
    score_threshold: float = 0.01
    iou_threshold: float = 0.6
    max_classes_per_detection: int = 1
    detections_per_class: int = 100
    use_regular_nms: bool = False

    def signature(self, num_classes: int) -> str:
        """The op's attributes as the `experimental_implements` text the converter fuses."""
        y, x, h, w = box_coder.SCALES
        attrs = {
            "max_detections": ("i", self.max_detections),
            "max_classes_per_detection": ("i", self.max_classes_per_detection),
            "detections_per_class": ("i", self.detections_per_class),
            "use_regular_nms": ("b", str(self.use_regular_nms).lower()),
            "nms_score_threshold": ("f", self.score_threshold),
            "nms_iou_threshold": ("f", self.iou_threshold),
            "num_classes": ("i", num_classes),
            "y_scale": ("f", y),
            "x_scale": ("f", x),
            "h_scale": ("f", h),
            "w_scale": ("f", w),
        }
        text = ['name: "TFLite_Detection_PostProcess"']
        for key, (kind, value) in attrs.items():
            text.append(f'attr {{ key: "{key}" value {{ {kind}: {value} }} }}')
        return " ".join(text)


DEFAULT = PostProcess()


def make_predict_fn(detector: Detector, post: PostProcess = DEFAULT):
    """A traced function: float images [B, S, S, 3] 0..255 -> (boxes [B, K, 4], scores [B, K],
    classes [B, K] 0-based, valid [B], box encodings, logits), as the delivered op would answer."""
    anchors = tf.constant(detector.anchors)
    network = detector.network
    k = post.max_detections
    # Any batch size, traced once: a checkpoint's evaluation and its sample picture call it with
    # different batch sizes, and each new shape would cost a trace (5-10 s on two cores).
    spec = tf.TensorSpec([None, *network.input_shape[1:]], tf.float32)

    @tf.function(input_signature=[spec], autograph=False)
    def traced(images: tf.Tensor):
        box_enc, logits = network(images, training=False)
        boxes = box_coder.decode(box_enc, anchors)
        scores = tf.sigmoid(logits)
        if post.use_regular_nms:
            nms = tf.image.combined_non_max_suppression(
                boxes[:, :, None, :],
                scores,
                max_output_size_per_class=post.detections_per_class,
                max_total_size=k,
                iou_threshold=post.iou_threshold,
                score_threshold=post.score_threshold,
                clip_boxes=False,
            )
            classes = tf.cast(nms.nmsed_classes, tf.int32)
            return nms.nmsed_boxes, nms.nmsed_scores, classes, nms.valid_detections, box_enc, logits
        best = tf.reduce_max(scores, axis=-1)
        keep, valid = tf.image.non_max_suppression_padded(
            boxes,
            best,
            max_output_size=k,
            iou_threshold=post.iou_threshold,
            score_threshold=post.score_threshold,
            pad_to_max_output_size=True,
        )
        out_boxes = tf.gather(boxes, keep, batch_dims=1)
        out_scores = tf.gather(best, keep, batch_dims=1)
        out_classes = tf.gather(tf.argmax(scores, axis=-1, output_type=tf.int32), keep, batch_dims=1)
        return out_boxes, out_scores, out_classes, valid, box_enc, logits

    def predict(images: np.ndarray | tf.Tensor):
        return traced(tf.cast(images, tf.float32))

    return predict
