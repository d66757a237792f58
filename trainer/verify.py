"""Verify an exported .tflite in the LiteRT interpreter before it is delivered.

Checks the input (1, S, S, 3) and the four standard outputs by shape and dtype, then measures
COCO mAP on the validation images, so float and int8 are compared on the same footing.

How far int8 is below float is judged on more than one evaluation: on a few hundred images one
evaluation's mAP moves by about 0.01 when every pixel moves by one grey level (robosub, see
bench/int8.py; by 0.03 on the demo's 57 images), so the gate takes the mean drop over the images as
they are and copies with such invisible noise: enough copies for about GATE_IMAGES images in all,
within 2 to 10 (gate_copies).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from storage.coco import coco_evaluate, coco_figures
from trainer.evaluate import Detections, coco_metrics

# An int8 model is not called good when its mAP@0.5 or its mAP@0.5:0.95 falls more than this below
# float's: teams judge the robot's model by both, and loose int8 boxes show only in the second.
MAX_INT8_DROP = 0.02
GATE_IMAGES = 1000


class ModelCheckFailed(RuntimeError):
    """The exported model does not have the expected inputs or outputs."""


def _interpreter(path: Path, threads: int = 2):
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # pragma: no cover - devices without ai-edge-litert
        from tflite_runtime.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter


def check_signature(path: Path, size: int, input_dtype: type) -> dict[str, object]:
    it = _interpreter(path)
    (inp,) = it.get_input_details()
    if tuple(inp["shape"]) != (1, size, size, 3) or inp["dtype"] != input_dtype:
        raise ModelCheckFailed(
            f"{path.name}: expected input (1, {size}, {size}, 3) {np.dtype(input_dtype).name}, "
            f"got {tuple(inp['shape'])} {np.dtype(inp['dtype']).name}"
        )
    outs = it.get_output_details()
    shapes = [tuple(o["shape"]) for o in outs]
    k = shapes[0][1] if shapes and len(shapes[0]) == 3 else -1
    expected = [(1, k, 4), (1, k), (1, k), (1,)]
    if len(outs) != 4 or shapes != expected or any(o["dtype"] != np.float32 for o in outs):
        raise ModelCheckFailed(
            f"{path.name}: expected 4 float32 outputs boxes/classes/scores/count with shapes {expected}, "
            f"found {[(tuple(o['shape']), np.dtype(o['dtype']).name) for o in outs]}"
        )
    return {
        "input_shape": list(inp["shape"]),
        "input_dtype": np.dtype(inp["dtype"]).name,
        "input_quantization": list(inp["quantization"]),
        "max_detections": int(k),
    }


def run_tflite(path: Path, images: Iterable[np.ndarray], threads: int = 2) -> list[Detections]:
    """Run the model on uint8 images [n, S, S, 3]; classes come back as 1..C."""
    it = _interpreter(path, threads)
    inp = it.get_input_details()[0]
    outs = it.get_output_details()
    results = []
    for image in images:
        it.set_tensor(inp["index"], image[None].astype(inp["dtype"]))
        it.invoke()
        boxes, classes, scores, count = (it.get_tensor(o["index"]) for o in outs)
        n = int(count[0])
        results.append(Detections(boxes[0, :n], scores[0, :n], classes[0, :n].astype(np.int32) + 1))
    return results


def tflite_metrics(
    path: Path,
    images: np.ndarray,
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    labels: Sequence[str],
    score_threshold: float,
) -> dict[str, object]:
    return coco_metrics(truths, run_tflite(path, images), labels, score_threshold)


def perturbed(images: np.ndarray, seed: int, part: int = 0) -> np.ndarray:
    """`images` (uint8) with every value moved by -1, 0 or +1 at random, the same for the same (seed,
    part); seed 0 leaves them as they are."""
    if seed == 0:
        return images
    noise = np.random.default_rng([seed, part]).integers(-1, 2, images.shape, dtype=np.int16)
    return np.clip(images.astype(np.int16) + noise, 0, 255).astype(np.uint8)


CHUNK = 64  # images perturbed at a time: a validation set is never held in memory twice


def _perturbed_images(images: np.ndarray, seed: int) -> Iterator[np.ndarray]:
    for start in range(0, len(images), CHUNK):
        yield from perturbed(images[start : start + CHUNK], seed, start)


def gate_copies(images: int) -> int:
    """Perturbed copies the int8 gate adds to `images` validation images: about GATE_IMAGES images
    evaluated in all, at least 2 copies and at most 10 (a small set is cheap to run again)."""
    return min(10, max(2, math.ceil(GATE_IMAGES / max(images, 1)) - 1))


def int8_drop(
    float_model: Path,
    int8_model: Path,
    images: np.ndarray,
    truths: Sequence[tuple[np.ndarray, np.ndarray]],
    labels: Sequence[str],
    copies: int,
    first: Sequence[float] | None = None,
) -> dict[str, Any]:
    """How far the int8 model is below the float one on mAP@0.5 and mAP@0.5:0.95: the mean and spread
    over the images as they are and `copies` perturbed copies. `first`: the four figures (float@0.5,
    float@0.5:0.95, int8@0.5, int8@0.5:0.95) on the images as they are, when already measured."""
    figures = []
    for seed in range(copies + 1):
        if seed == 0 and first is not None:
            figures.append([float(v) for v in first])
            continue
        row: list[float] = []
        for path in (float_model, int8_model):
            detections = run_tflite(path, _perturbed_images(images, seed))
            m = coco_figures(coco_evaluate(truths, detections, labels), labels, truths)
            row += [m["map50"], m["map50_95"]]
        figures.append(row)
    drops = [(f[0] - f[2], f[1] - f[3]) for f in figures]

    def sd(values: list[float]) -> float:
        return statistics.stdev(values) if len(values) > 1 else 0.0

    return {
        "evaluations": len(figures),
        "mean": [statistics.fmean(d[i] for d in drops) for i in (0, 1)],
        "sd": [sd([d[i] for d in drops]) for i in (0, 1)],
        "float_sd": [sd([f[i] for f in figures]) for i in (0, 1)],
        "figures": figures,
    }
