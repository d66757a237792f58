"""Building each detector: outputs that match its anchors, the small-object head's priors and assignment,
and weights it cannot load refused with what to use instead (no training)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from trainer import box_coder
from trainer.anchors import SMALL_OBJECT_SHAPES, prior_anchors, small_object_anchors, ssd_anchors
from trainer.config import MODELS, TrainConfig
from trainer.models import build_detector
from trainer.models.backbone import WeightsUnavailable


def test_bad_weights_are_refused_with_alternatives(tmp_path) -> None:
    with pytest.raises(WeightsUnavailable, match="does not exist"):
        build_detector(
            TrainConfig(labels=("a",), input_size=96, alpha=0.35, weights=str(tmp_path / "nope.h5"))
        )
    with pytest.raises(WeightsUnavailable, match="--weights none"):
        build_detector(TrainConfig(labels=("a",), input_size=96, alpha=0.35, weights="imagenet"))


@pytest.mark.parametrize("model", MODELS)
def test_every_model_predicts_one_box_and_score_row_per_anchor(model) -> None:
    detector = build_detector(TrainConfig(model=model, labels=("a", "b"), input_size=96, alpha=0.35))
    boxes, logits = detector.network(np.zeros((1, 96, 96, 3), np.float32))
    n = len(detector.anchors)
    assert boxes.shape == (1, n, 4) and logits.shape == (1, n, 2)
    assert sum(detector.level_sizes) == n


def test_the_small_object_head_has_one_prior_a_cell_and_always_assigns_by_atss() -> None:
    config = TrainConfig(model="ssd_mobilenet_v2_fpnlite_p3p6_320", labels=("a",), alpha=0.35, assigner="iou")
    detector = build_detector(config)
    assert detector.level_sizes == (40 * 40, 20 * 20, 10 * 10, 5 * 5)  # P3-P6 on 320 px: strides 8-64
    first = detector.anchors[0]
    np.testing.assert_allclose(first, [4 / 320, 4 / 320, 32 / 320, 32 / 320], rtol=1e-6)  # 4 strides
    # a 28 x 15 px buoy, the median red buoy of robosub: below IoU 0.5 with every prior, still several
    boxes = tf.constant([[100 / 320, 60 / 320, 115 / 320, 88 / 320]])
    classes = tf.constant([1])
    anchors = tf.constant(detector.anchors)
    atss = box_coder.match_atss(boxes, classes, anchors, detector.level_sizes)
    got = detector.match(boxes, classes)
    for a, b in zip(got, atss, strict=True):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    assert int(tf.reduce_sum(tf.cast(got[1] > 0, tf.int32))) >= 2
    assert float(tf.reduce_max(box_coder.iou(boxes, box_coder.center_to_corners(anchors)))) < 0.5


def test_prior_anchors_are_square_cells_wide_and_ordered_row_major() -> None:
    anchors = prior_anchors([2, 1], strides=4.0)
    assert anchors.shape == (5, 4)
    np.testing.assert_allclose(anchors[:2], [[0.25, 0.25, 2.0, 2.0], [0.25, 0.75, 2.0, 2.0]])
    np.testing.assert_allclose(anchors[4], [0.5, 0.5, 4.0, 4.0])


def test_the_stride8_model_gives_a_small_buoy_an_anchor_that_fits() -> None:
    """A 28 x 15 px buoy (robosub's median red buoy on a 320 input) overlaps no anchor of the plain SSD
    at IoU 0.5, so it learns only through the forced best match; the stride-8 level has one that fits."""
    buoy = tf.constant([[100 / 320, 60 / 320, 128 / 320, 75 / 320]])
    plain = build_detector(TrainConfig(labels=("a",), alpha=0.35))
    small = build_detector(TrainConfig(model="ssd_mobilenet_v2_s8_320", labels=("a",), alpha=0.35))
    assert small.level_sizes[0] == 40 * 40 * len(SMALL_OBJECT_SHAPES)  # stride 8 in front
    assert small.level_sizes[1:] == plain.level_sizes
    np.testing.assert_allclose(small.anchors[small.level_sizes[0] :], plain.anchors)
    # the plain SSD's layers keep their names, so its checkpoints and tests see the same model
    names = {layer.name for layer in small.network.layers}
    assert {"box_head0", "class_head0", "box_head_s8", "class_head_s8"} <= names

    def best(detector) -> float:
        overlaps = box_coder.iou(buoy, box_coder.center_to_corners(tf.constant(detector.anchors)))
        return float(tf.reduce_max(overlaps))

    assert best(plain) < 0.5 <= best(small)
    _, classes, _ = small.match(buoy, tf.constant([1]))
    positives = np.flatnonzero(classes.numpy() > 0)
    assert len(positives) and positives.max() < small.level_sizes[0]  # learnt by the stride-8 level


def test_small_object_anchors_are_the_listed_shapes_in_each_stride8_cell() -> None:
    anchors = small_object_anchors([2, 1, 1])
    per_cell = len(SMALL_OBJECT_SHAPES)
    assert anchors.shape == (4 * per_cell + len(ssd_anchors([1, 1])), 4)
    hw = anchors[:per_cell, 2:]
    assert np.allclose(hw[:, 1] / hw[:, 0], [ar for _, ar in SMALL_OBJECT_SHAPES])  # width / height
    assert np.allclose(np.sqrt(hw[:, 0] * hw[:, 1]), [s for s, _ in SMALL_OBJECT_SHAPES])
    np.testing.assert_allclose(anchors[per_cell, :2], [0.25, 0.75])  # second cell, same row


def test_zero_init_residual_starts_every_residual_block_as_the_identity() -> None:
    import keras

    from trainer.models.backbone import mobilenet_v2, zero_init_residual

    backbone = mobilenet_v2(96, 0.35, "none")
    assert zero_init_residual(backbone) == 10  # MobileNetV2's ten blocks with a skip connection
    add = backbone.get_layer("block_5_add")
    probe = keras.Model(backbone.input, [add.input[0], add.output])
    skip, out = probe(np.random.default_rng(0).uniform(-1, 1, (2, 96, 96, 3)).astype("float32"))
    np.testing.assert_allclose(out, skip)  # the block adds nothing until training moves its gamma
    branch = keras.Model(backbone.input, backbone.get_layer("block_5_project_BN").output)
    assert not np.any(branch(np.ones((1, 96, 96, 3), "float32")))
    # A block without a skip connection keeps its random scale.
    assert np.all(backbone.get_layer("block_6_project_BN").gamma.numpy() == 1.0)


def test_a_model_from_scratch_starts_its_residual_blocks_as_the_identity_unless_told_not_to() -> None:
    def gamma(**changes) -> np.ndarray:
        config = TrainConfig(labels=("a",), input_size=96, alpha=0.35, **changes)
        backbone = build_detector(config).network.get_layer("backbone")
        return backbone.get_layer("block_5_project_BN").gamma.numpy()

    assert not np.any(gamma())  # from scratch (weights "none"), the default
    assert np.all(gamma(zero_init_residual=False) == 1.0)


def _feeds(network, layer_name: str) -> set[str]:
    """The names of every layer upstream of `layer_name` in a functional Keras model; where a nested
    model (the backbone) feeds it, the names of the nested model's outputs it takes too."""
    seen: set[str] = set()
    todo = [network.get_layer(layer_name)]
    while todo:
        layer = todo.pop()
        inputs = layer.input if isinstance(layer.input, list) else [layer.input]
        for tensor in inputs:
            parent, _, index = tensor._keras_history
            if isinstance(parent, keras.Model):
                seen.add(parent.outputs[index]._keras_history.operation.name)
            if parent.name not in seen:
                seen.add(parent.name)
                todo.append(parent)
    return seen


def test_the_top_down_stride8_model_gives_its_small_anchors_the_deep_layers_context() -> None:
    """ssd_mobilenet_v2_s8td_320 is the s8 model (same anchors, same levels) whose stride-8 head also
    sees block_13 (stride 16) through a top-down merge; the s8 model's head sees only block_6."""
    config = TrainConfig(model="ssd_mobilenet_v2_s8td_320", labels=("a",), alpha=0.35)
    top_down = build_detector(config)
    plain = build_detector(config.with_(model="ssd_mobilenet_v2_s8_320"))
    assert top_down.level_sizes == plain.level_sizes
    np.testing.assert_allclose(top_down.anchors, plain.anchors)
    assert "block_13_expand_relu" in _feeds(top_down.network, "box_head_s8")
    assert "block_13_expand_relu" not in _feeds(plain.network, "box_head_s8")
    assert "block_6_expand_relu" in _feeds(plain.network, "box_head_s8")
