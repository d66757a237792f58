"""Bias correction for int8 weight rounding, against TFLite's own int8 conversion."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from trainer.bias import conv_bn_pairs, correct_biases, fold, rounding_error
from trainer.stem import equalize_stem

SIZE = 16


def network() -> keras.Model:
    """A "preprocess" layer and a "backbone" of convolution + BatchNorm pairs as MobileNetV2 has them
    (a depthwise one on ReLU6 output that sits far above zero, as in its stem), with BatchNorm
    statistics far from their defaults, so that folding them in makes uneven per-channel kernels."""
    keras.utils.set_random_seed(7)
    inputs = keras.Input((SIZE, SIZE, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.ReLU(6.0)(x)
    x = keras.layers.Conv2D(4, 1, use_bias=False)(x)
    x = keras.layers.BatchNormalization()(x)
    backbone = keras.Model(inputs, x, name="backbone")
    images = keras.Input((SIZE, SIZE, 3))
    net = keras.Model(images, backbone(keras.layers.Rescaling(1 / 127.5, -1.0, name="preprocess")(images)))
    rng = np.random.default_rng(0)
    for _, bn in conv_bn_pairs(backbone):
        gamma, _, _, variance = bn.get_weights()
        n = len(gamma)
        bn.set_weights(
            [
                rng.uniform(0.5, 3.0, n).astype(np.float32),
                rng.uniform(1.0, 4.0, n).astype(np.float32),  # outputs well above zero
                rng.normal(0.0, 0.3, n).astype(np.float32),
                rng.uniform(0.01, 0.5, n).astype(np.float32) * variance,
            ]
        )
    return net


def images(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.uniform(0, 255, (1, SIZE, SIZE, 3)).astype(np.float32) for _ in range(n)]


def int8_tflite(net: keras.Model, calibration: list[np.ndarray]) -> Interpreter:
    conv = tf.lite.TFLiteConverter.from_keras_model(net)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([image] for image in calibration)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    interpreter = Interpreter(model_content=conv.convert())
    interpreter.allocate_tensors()
    return interpreter


def run(interpreter: Interpreter, batch: list[np.ndarray]) -> np.ndarray:
    (inp,), (out,) = interpreter.get_input_details(), interpreter.get_output_details()
    outputs = []
    for image in batch:
        interpreter.set_tensor(inp["index"], image)
        interpreter.invoke()
        outputs.append(interpreter.get_tensor(out["index"]).copy())
    return np.concatenate(outputs)


def test_the_rounding_is_tflites_own() -> None:
    """Folded kernel minus rounding_error is, weight for weight, what TFLite's int8 model holds."""
    net = network()
    interpreter = int8_tflite(net, images(1, 8))
    held = {}
    for detail in interpreter.get_tensor_details():
        scales = detail["quantization_parameters"]["scales"]
        if detail["dtype"] == np.int8 and len(detail["shape"]) == 4 and len(scales) > 1:
            values = interpreter.get_tensor(detail["index"]).astype(np.float32)
            axis = detail["quantization_parameters"]["quantized_dimension"]
            shape = [1, 1, 1, 1]
            shape[axis] = -1
            held[tuple(detail["shape"])] = values * scales.reshape(shape)
    pairs = conv_bn_pairs(net.get_layer("backbone"))
    assert len(pairs) == 3 and len(held) == 3
    for conv, bn in pairs:
        (kernel,) = conv.get_weights()
        factor = fold(bn)
        depthwise = isinstance(conv, keras.layers.DepthwiseConv2D)
        error = rounding_error(kernel, factor, depthwise)
        folded = kernel * (factor[None, None, :, None] if depthwise else factor)
        # TFLite's layouts: conv [out, kh, kw, in], depthwise [1, kh, kw, channels]
        tflite = held[(1, 3, 3, 8)][0][..., None] if depthwise else held[(kernel.shape[3], *kernel.shape[:3])]
        ours = folded - error
        ours = ours if depthwise else ours.transpose(3, 0, 1, 2)
        np.testing.assert_allclose(ours, tflite, rtol=1e-5, atol=1e-6)
        assert np.abs(error).max() > 0  # there was rounding to correct


def test_correction_brings_the_int8_output_to_the_float_one() -> None:
    net = network()
    calibration, others = images(1, 24), images(2, 16)
    float_out = np.concatenate([np.asarray(net(image)) for image in others])
    plain = run(int8_tflite(net, calibration), others)

    shifts = correct_biases(net, lambda: iter(calibration))

    assert len(shifts) == 3 and all(np.abs(s).max() > 0 for s in shifts.values())
    corrected = run(int8_tflite(net, calibration), others)
    # the systematic part of the error, each output channel's mean over all pixels, shrinks
    bias_plain = np.abs((plain - float_out).mean(axis=(0, 1, 2)))
    bias_corrected = np.abs((corrected - float_out).mean(axis=(0, 1, 2)))
    assert bias_corrected.mean() < 0.5 * bias_plain.mean(), (bias_plain, bias_corrected)
    rmse = [np.sqrt(((out - float_out) ** 2).mean()) for out in (plain, corrected)]
    assert rmse[1] < rmse[0]


@pytest.mark.parametrize("prepare", [correct_biases, equalize_stem])
def test_a_network_without_mobilenets_layers_is_left_alone(prepare) -> None:
    """Both int8 preparations of the exported copy (trainer/bias.py, trainer/stem.py) leave a network
    without MobileNetV2's backbone as it is."""
    inputs = keras.Input((8, 8, 3))
    net = keras.Model(inputs, keras.layers.Conv2D(2, 1)(inputs))
    weights = [w.copy() for w in net.get_weights()]
    assert prepare(net, lambda: iter(images(0, 1))) == {}
    for a, b in zip(net.get_weights(), weights, strict=True):
        np.testing.assert_array_equal(a, b)
