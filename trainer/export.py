"""Export a trained detector to TFLite: float32 and fully int8-quantized, both ending in the fused
TFLite_Detection_PostProcess op, so the outputs are exactly boxes [1, K, 4] (ymin, xmin, ymax, xmax,
normalised), classes [1, K], scores [1, K] and count [1], in that order.

How (each step avoids a trap seen before):
1. The network (pre-processing included) is traced and frozen on its own, so its weights become
   constants rather than resource variables the converter would keep.
2. A new tf.function calls the frozen graph, then a stub function carrying
   `experimental_implements` for the post-process op. The stub is not frozen (freezing would
   constant-fold it away); the converter replaces it with the fused op.
3. It is saved once as a SavedModel and converted twice (float, then int8); the outputs are put in
   the standard order if the converter emitted them otherwise.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from trainer import postprocess
from trainer.bias import correct_biases
from trainer.models.detector import Detector
from trainer.postprocess import PostProcess

log = logging.getLogger(__name__)


def _frozen_network(
    detector: Detector, box_bound: float | None
) -> Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]:
    size = detector.config.input_size
    network = detector.network

    @tf.function
    def raw(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        boxes, logits = network(images, training=False)
        if box_bound is not None:
            boxes = tf.clip_by_value(boxes, -box_bound, box_bound)
        scores = tf.sigmoid(logits)
        # the op expects a background column first, which it skips
        background = tf.zeros_like(scores[..., :1])
        return boxes, tf.concat([background, scores], axis=-1)

    concrete = raw.get_concrete_function(tf.TensorSpec([1, size, size, 3], tf.float32))
    return convert_variables_to_constants_v2(concrete)


class _ExportModule(tf.Module):
    def __init__(self, detector: Detector, post: PostProcess, box_bound: float | None) -> None:
        super().__init__()
        self._frozen = _frozen_network(detector, box_bound)
        self._anchors = tf.constant(detector.anchors, tf.float32)
        size = detector.config.input_size
        num_classes = detector.config.num_classes

        @tf.function(experimental_implements=post.signature(num_classes))
        def post_process(box_encodings, class_predictions, anchors):
            del box_encodings, class_predictions, anchors
            return (
                tf.constant(0.0, name="boxes"),
                tf.constant(0.0, name="classes"),
                tf.constant(0.0, name="scores"),
                tf.constant(0.0, name="num_detections"),
            )

        @tf.function(input_signature=[tf.TensorSpec([1, size, size, 3], tf.float32, name="images")])
        def serve(images):
            boxes, scores = self._frozen(images)
            return post_process(boxes, scores, self._anchors)

        self.serve = serve


def save_module(
    detector: Detector, path: Path, post: PostProcess = postprocess.DEFAULT, box_bound: float | None = None
) -> None:
    """The frozen network and the post-process stub, as the SavedModel both .tflite files come from.

    `box_bound` clips the box encodings to [-box_bound, box_bound] before the post-process op. The int8
    model quantizes them with one scale for the whole tensor, calibrated on every anchor's output:
    anchors that see only background predict encodings far outside anything an object needs (-35..31
    on the demo's model, where training targets stay within 4.4), and those outliers set the grid. A
    box then moves in steps of 5% of its anchor's size. Clipped to what training asked of an anchor
    (with a margin), the grid is that much finer, and no encoding a training object asked for is cut.
    """
    module = _ExportModule(detector, post, box_bound)
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.serve})


def convert(
    detector: Detector,
    float_out: Path,
    int8_out: Path,
    representative: Callable[[], Iterator[np.ndarray]],
    post: PostProcess = postprocess.DEFAULT,
    box_bound: float | None = None,
) -> None:
    """Write the float32 .tflite and the fully int8 one (uint8 input, calibrated on `representative`:
    float32 [1,H,W,3] 0..255 images), both from the same frozen network (see save_module). The int8
    one's BatchNorm betas are first corrected for int8's weight rounding (trainer/bias.py): the float
    model is the network as it is, and `detector` is left as it came."""
    with tempfile.TemporaryDirectory() as tmp:
        save_module(detector, Path(tmp), post, box_bound)
        _write(converter(tmp, None), float_out)
    network = detector.network
    weights = network.get_weights()
    try:
        correct_biases(network, representative)
        with tempfile.TemporaryDirectory() as tmp:
            save_module(detector, Path(tmp), post, box_bound)
            _write(converter(tmp, representative), int8_out)
    finally:
        network.set_weights(weights)


def converter(
    saved_model: str | Path, representative: Callable[[], Iterator[np.ndarray]] | None
) -> tf.lite.TFLiteConverter:
    """The converter of the float model, or with `representative` of the fully int8 one."""
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved_model))
    conv.allow_custom_ops = True
    if representative is not None:
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = lambda: ([img] for img in representative())
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
    return conv


def _write(conv: tf.lite.TFLiteConverter, out: Path) -> None:
    data = conv.convert()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(standardize_outputs(data))


POSTPROCESS_OP = b"TFLite_Detection_PostProcess"
OUTPUT_NAMES = ("TFLite_Detection_PostProcess", *(f"TFLite_Detection_PostProcess:{i}" for i in (1, 2, 3)))


def standardize_outputs(data: bytes) -> bytes:
    """Make the model's outputs the post-process op's four, in the op's order, with the standard names
    (boxes, classes, scores, count), whatever order the converter chose."""
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(bytearray(data))
    graph = model.subgraphs[0]
    ops = [op for op in graph.operators if model.operatorCodes[op.opcodeIndex].customCode == POSTPROCESS_OP]
    if len(ops) != 1:
        raise RuntimeError(
            f"expected one {POSTPROCESS_OP.decode()} op in the converted model, found {len(ops)}"
        )
    outputs = list(ops[0].outputs)
    graph.outputs = outputs
    for index, name in zip(outputs, OUTPUT_NAMES, strict=True):
        graph.tensors[index].name = name.encode()
    for signature in model.signatureDefs or []:
        by_tensor = {t.tensorIndex: t for t in signature.outputs}
        signature.outputs = [by_tensor[i] for i in outputs if i in by_tensor]
        for t, key in zip(signature.outputs, ("boxes", "classes", "scores", "count"), strict=False):
            t.name = key.encode()
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))
