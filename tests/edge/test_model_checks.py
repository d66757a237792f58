"""What the detector checks before it runs a model: which output is which, that the file is TFLite, and
that it is a detector. No trained model needed (the checks on real models are in test_detector.py)."""

from __future__ import annotations

import numpy as np
import pytest

from edge.detector import TFLiteDetector, map_outputs
from edge.errors import NotADetectionModel


def test_outputs_are_told_apart_by_shape_and_name_not_position() -> None:
    shuffled = [
        {"index": 9, "name": "TFLite_Detection_PostProcess:3", "shape": np.array([1])},
        {"index": 7, "name": "TFLite_Detection_PostProcess:2", "shape": np.array([1, 10])},
        {"index": 5, "name": "TFLite_Detection_PostProcess", "shape": np.array([1, 10, 4])},
        {"index": 6, "name": "TFLite_Detection_PostProcess:1", "shape": np.array([1, 10])},
    ]
    m = map_outputs(shuffled)
    assert (m.boxes, m.classes, m.scores, m.count) == (5, 6, 7, 9)
    named = [dict(d) for d in shuffled]
    named[1]["name"], named[3]["name"] = "detection_scores", "detection_classes"
    assert map_outputs(named).scores == 7


def test_not_a_tflite_file_is_refused(tmp_path) -> None:
    path = tmp_path / "model.tflite"
    path.write_bytes(b"<html>404 not found</html>")
    with pytest.raises(NotADetectionModel, match="not a TFLite model"):
        TFLiteDetector(path)


def test_classification_model_is_refused_with_what_was_found(tmp_path) -> None:
    import tensorflow as tf

    inputs = tf.keras.Input((96, 96, 3))
    model = tf.keras.Model(
        inputs,
        tf.keras.layers.Dense(5, activation="softmax")(tf.keras.layers.GlobalAveragePooling2D()(inputs)),
    )
    path = tmp_path / "classifier.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    with pytest.raises(NotADetectionModel, match=r"expected 4 outputs boxes/classes/scores/count, found 1"):
        TFLiteDetector(path, labels=None)
