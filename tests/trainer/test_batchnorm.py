"""The fused BatchNorm trains exactly as Keras' BatchNormalization and stays one with it on disk."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from trainer.config import TrainConfig
from trainer.models import build_detector
from trainer.models.batchnorm import BatchNormalization, fuse_batch_norms


def tiny(seed: int = 1) -> keras.Model:
    """Two BatchNorms, the second on a 1x1 map (there the biased and unbiased variance differ most)."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((6, 6, 5))
    x = keras.layers.Conv2D(8, 3, padding="same")(inputs)
    x = keras.layers.ReLU()(keras.layers.BatchNormalization(momentum=0.9)(x))
    x = keras.layers.Conv2D(4, 3, strides=6)(x)
    return keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.8, epsilon=1e-3)(x))


def train(model: keras.Model, images: tf.Tensor, steps: int) -> list[tuple[np.ndarray, list[np.ndarray]]]:
    step = _step(model)
    return [tuple(tf.nest.map_structure(np.asarray, step(images))) for _ in range(steps)]


def _step(model: keras.Model) -> tf.types.experimental.PolymorphicFunction:
    @tf.function
    def step(x: tf.Tensor) -> tuple[tf.Tensor, list[tf.Tensor]]:
        with tf.GradientTape() as tape:
            y = model(x, training=True)
            loss = tf.reduce_sum(tf.sin(y))
        return y, tape.gradient(loss, model.trainable_variables)

    return step


def op_types(model: keras.Model, images: tf.Tensor) -> set[str]:
    graph = _step(model).get_concrete_function(images).graph
    return {op.type for op in graph.get_operations()}


def test_the_training_pass_runs_the_fused_kernels() -> None:
    model, images = tiny(), tf.zeros([3, 6, 6, 5])
    assert "FusedBatchNormV3" not in op_types(model, images)  # Keras' own: separate ops
    fuse_batch_norms(model)
    assert {"FusedBatchNormV3", "FusedBatchNormGradV3"} <= op_types(model, images)


def test_the_fused_training_pass_is_keras_batch_norm() -> None:
    keras_model, fused_model = tiny(), tiny()
    assert fuse_batch_norms(fused_model) == 2
    fused_model.set_weights(keras_model.get_weights())
    images = tf.random.normal([3, 6, 6, 5], seed=2) * 3.0 + 1.0
    before = [w.copy() for w in keras_model.get_weights()]
    for (y_k, g_k), (y_f, g_f) in zip(
        train(keras_model, images, 3), train(fused_model, images, 3), strict=True
    ):
        np.testing.assert_allclose(y_f, y_k, atol=1e-5)
        for a, b in zip(g_f, g_k, strict=True):
            np.testing.assert_allclose(a, b, atol=1e-4)
    # the moving statistics moved, and moved alike
    after = keras_model.get_weights()
    assert max(np.abs(a - b).max() for a, b in zip(after, before, strict=True)) > 0.05
    for a, b in zip(fused_model.get_weights(), after, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)
    np.testing.assert_allclose(
        fused_model(images, training=False), keras_model(images, training=False), atol=1e-5
    )


def test_a_frozen_layer_keeps_its_statistics() -> None:
    model = tiny()
    fuse_batch_norms(model)
    bn = model.layers[2]
    assert type(bn) is BatchNormalization
    bn.trainable = False
    start = [w.copy() for w in bn.get_weights()]
    train(model, tf.random.normal([3, 6, 6, 5], seed=3), 2)
    for a, b in zip(bn.get_weights(), start, strict=True):
        np.testing.assert_array_equal(a, b)


def test_detectors_train_fused_and_share_their_weights_files_with_plain_keras(tmp_path: Path) -> None:
    """Checkpoints written before the fused layer load into it, and the other way round."""
    config = TrainConfig(labels=("a",), alpha=0.35, input_size=96)
    fused, plain = build_detector(config).network, build_detector(config).network
    norms = [
        x
        for x in fused._flatten_layers(include_self=False, recursive=True)
        if isinstance(x, keras.layers.BatchNormalization)
    ]
    assert len(norms) > 40 and all(type(x) is BatchNormalization for x in norms)
    for layer in plain._flatten_layers(include_self=False, recursive=True):
        if type(layer) is BatchNormalization:
            layer.__class__ = keras.layers.BatchNormalization  # as every model was before
    images = tf.random.uniform([1, 96, 96, 3], 0, 255, seed=4)
    for source, target in ((fused, plain), (plain, fused)):
        keras.utils.set_random_seed(5)
        for weight in source.weights:
            weight.assign(tf.random.uniform(weight.shape, 0.5, 1.5))
        path = tmp_path / f"{source.name}-{id(source)}.weights.h5"
        source.save_weights(str(path))
        target.load_weights(str(path))
        for a, b in zip(target(images, training=False), source(images, training=False), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
