"""The delivered .tflite files: standard outputs, int8 input, LiteRT runs them, int8 agrees with float."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from ai_edge_litert.interpreter import Interpreter

from trainer.data import ImageCache
from trainer.verify import ModelCheckFailed, check_signature, gate_copies, run_tflite, tflite_metrics

pytestmark = pytest.mark.slow


def _interpreter(path):
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    return it


@pytest.mark.parametrize(("kind", "dtype"), [("int8", np.uint8), ("float", np.float32)])
def test_four_standard_outputs_in_order(trained_model, kind, dtype) -> None:
    it = _interpreter(trained_model.out_dir / f"model_{kind}.tflite")
    (inp,) = it.get_input_details()
    assert tuple(inp["shape"]) == (1, 128, 128, 3) and inp["dtype"] == dtype
    outs = it.get_output_details()
    assert [tuple(o["shape"]) for o in outs] == [(1, 100, 4), (1, 100), (1, 100), (1,)]
    assert [o["name"] for o in outs] == [
        "TFLite_Detection_PostProcess",
        "TFLite_Detection_PostProcess:1",
        "TFLite_Detection_PostProcess:2",
        "TFLite_Detection_PostProcess:3",
    ]
    assert all(o["dtype"] == np.float32 for o in outs)
    ops = {op["op_name"] for op in it._get_ops_details()}
    assert "TFLite_Detection_PostProcess" in ops


def test_int8_model_is_fully_quantized(trained_model) -> None:
    it = _interpreter(trained_model.out_dir / "model_int8.tflite")
    scale, _zero_point = it.get_input_details()[0]["quantization"]
    assert scale > 0
    conv_weights = [
        t
        for t in it.get_tensor_details()
        if t["dtype"] == np.int8 and len(t["shape"]) == 4 and t["shape"][0] > 1
    ]
    float_weights = [
        t
        for t in it.get_tensor_details()
        if t["dtype"] == np.float32
        and len(t["shape"]) == 4
        and t["shape"][0] > 1
        and "Detection" not in t["name"]
    ]
    assert conv_weights and not float_weights
    size_int8 = (trained_model.out_dir / "model_int8.tflite").stat().st_size
    size_float = (trained_model.out_dir / "model_float.tflite").stat().st_size
    assert size_int8 < size_float / 2


def test_int8_and_float_agree(trained_model) -> None:
    """On the images the tiny model learned (its validation split is too small to say much)."""
    data, labels = trained_model.data, trained_model.config.labels
    cache = ImageCache(data.train, 128, data.cache_dir)
    truths = [(s.boxes, s.classes) for s in data.train]
    out = trained_model.out_dir
    map_float = tflite_metrics(out / "model_float.tflite", np.asarray(cache.images), truths, labels, 0.3)[
        "map50"
    ]
    map_int8 = tflite_metrics(out / "model_int8.tflite", np.asarray(cache.images), truths, labels, 0.3)[
        "map50"
    ]
    assert map_float > 0.8
    assert abs(map_int8 - map_float) < 0.05
    images = np.asarray(cache.images[:8])
    dets_f = run_tflite(trained_model.out_dir / "model_float.tflite", images)
    dets_q = run_tflite(trained_model.out_dir / "model_int8.tflite", images)
    agree = 0
    for f, q in zip(dets_f, dets_q, strict=True):
        if len(f.boxes) and len(q.boxes) and f.classes[0] == q.classes[0]:
            agree += np.abs(f.boxes[0] - q.boxes[0]).max() < 0.05
    assert agree >= 6


def test_float_tflite_matches_keras(trained_model) -> None:
    """The exported float model is the Keras network: same top detection (class, box, score) on every
    image, to float rounding. Not an accuracy test: it holds for a weak model as for a good one."""
    from trainer import evaluate
    from trainer.models import build_detector

    cfg = trained_model.config
    detector = build_detector(cfg.with_(weights="none"))
    detector.network.load_weights(str(trained_model.out_dir / "model.weights.h5"))
    data = trained_model.data
    images = np.asarray(ImageCache(data.train, cfg.input_size, data.cache_dir).images[:8])
    keras_dets = evaluate.detect(evaluate.make_predict_fn(detector), images)
    tflite_dets = run_tflite(trained_model.out_dir / "model_float.tflite", images)
    for k, t in zip(keras_dets, tflite_dets, strict=True):
        assert len(k.scores) and len(t.scores)
        top_k, top_t = int(np.argmax(k.scores)), int(np.argmax(t.scores))
        assert k.classes[top_k] == t.classes[top_t]
        assert k.scores[top_k] == pytest.approx(t.scores[top_t], abs=1e-3)
        # the same decoding and NMS (trainer/postprocess.py): every confident Keras detection is one
        # the op gave too, box for box, unclipped as the op leaves them
        for box, score, label in zip(k.boxes, k.scores, k.classes, strict=True):
            if score < 0.2:
                continue
            same = (t.classes == label) & (np.abs(t.boxes - box).max(axis=1) < 1e-3)
            assert same.any(), (box, score, label)


def test_manifest_labels_and_hashes(trained_model) -> None:
    out = trained_model.out_dir
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == list(trained_model.config.labels) == ["circle", "square", "triangle"]
    assert (out / "labels.txt").read_text().splitlines() == manifest["labels"]
    for entry in manifest["files"].values():
        assert hashlib.sha256((out / entry["path"]).read_bytes()).hexdigest() == entry["sha256"]
    assert manifest["config"]["steps"] == 200
    m = manifest["metrics"]
    # the gate: both metrics within 0.02 of float on average over the images as they are and
    # copies with invisible noise (about 1,000 images in all, at most 10 copies)
    drop = m["int8_drop"]
    validation = len(trained_model.data.val)
    assert drop["evaluations"] == 1 + gate_copies(validation) > 2
    assert drop["evaluations"] * validation >= 1000 or drop["evaluations"] == 11
    assert drop["figures"][0] == [m["map50_float"], m["map50_95_float"], m["map50_int8"], m["map50_95_int8"]]
    assert drop["mean"] == pytest.approx(
        np.mean([[f - i, f95 - i95] for f, f95, i, i95 in drop["figures"]], 0)
    )
    assert manifest["int8_ok"] is (max(drop["mean"]) <= 0.02)
    assert "copies with invisible noise" in manifest["verdict"]
    assert json.loads((out / "config.json").read_text())["labels"] == manifest["labels"]


def test_a_model_without_the_standard_outputs_is_caught(trained_model, tmp_path) -> None:
    import tensorflow as tf

    inputs = tf.keras.Input((128, 128, 3))
    classifier = tf.keras.Model(
        inputs, tf.keras.layers.Dense(3)(tf.keras.layers.GlobalAveragePooling2D()(inputs))
    )
    path = tmp_path / "classifier.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(classifier).convert())
    with pytest.raises(ModelCheckFailed, match="expected 4 float32 outputs boxes/classes/scores/count"):
        check_signature(path, 128, np.float32)
    with pytest.raises(ModelCheckFailed, match=r"expected input \(1, 320, 320, 3\) uint8"):
        check_signature(trained_model.out_dir / "model_float.tflite", 320, np.uint8)


def test_box_encodings_are_clipped_to_what_training_asks(trained_model) -> None:
    """The int8 model's box-encoding grid spans the clip (1.5x the largest encoding a training object
    asks of an anchor), not the background anchors' outliers."""
    from trainer.models import build_detector

    bound = build_detector(trained_model.config).box_bound(trained_model.data.train)
    it = _interpreter(trained_model.out_dir / "model_int8.tflite")
    tensors = {t["index"]: t for t in it.get_tensor_details()}
    ops = it._get_ops_details()
    (post,) = [op for op in ops if op["op_name"] == "TFLite_Detection_PostProcess"]
    (dequantize,) = [op for op in ops if list(op["outputs"]) == [post["inputs"][0]]]
    scale, zero = tensors[dequantize["inputs"][0]]["quantization"]
    low, high = (-128 - zero) * scale, (127 - zero) * scale
    assert bound > 2 and -bound - scale <= low < 0 < high <= bound + scale


def test_the_exported_network_clips_its_box_encodings(trained_model) -> None:
    import tensorflow as tf

    from trainer.export import _frozen_network
    from trainer.models import build_detector

    detector = build_detector(trained_model.config.with_(weights="none"))
    detector.network.load_weights(str(trained_model.out_dir / "model.weights.h5"))
    size = trained_model.config.input_size
    images = ImageCache(trained_model.data.train, size, trained_model.data.cache_dir).images[:1]
    image = tf.constant(np.asarray(images, np.float32))
    raw, _ = detector.network(image, training=False)
    boxes, _ = _frozen_network(detector, 2.0)(image)
    assert np.abs(raw).max() > 2.0  # the clip has work to do
    np.testing.assert_allclose(boxes, np.clip(raw, -2.0, 2.0), atol=1e-4)
    unclipped, _ = _frozen_network(detector, None)(image)
    np.testing.assert_allclose(unclipped, raw, atol=1e-4)
