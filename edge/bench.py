"""Latency of a detection model on this device: median and p95 over N runs, with and without
pre-processing (resize of a 640x480 camera frame), and frames per second."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import numpy as np

from edge.detector import TFLiteDetector


def _stats(times_ms: list[float]) -> dict[str, float]:
    ordered = sorted(times_ms)
    median = statistics.median(ordered)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {"median_ms": median, "p95_ms": p95, "fps": 1000.0 / median if median else 0.0}


def benchmark(
    model: Path, threads: int = 2, runs: int = 100, warmup: int = 10, frame_size: tuple[int, int] = (640, 480)
) -> dict[str, object]:
    detector = TFLiteDetector(model, threads=threads, threshold=0.5)
    frame = np.random.default_rng(0).integers(0, 256, (frame_size[1], frame_size[0], 3), dtype=np.uint8)
    tensor, _ = detector.preprocess(frame)
    inference, end_to_end = [], []
    for i in range(warmup + runs):
        start = time.perf_counter()
        detector.infer(tensor)
        middle = time.perf_counter()
        detector.detect(frame)
        end = time.perf_counter()
        if i >= warmup:
            inference.append((middle - start) * 1000)
            end_to_end.append((end - middle) * 1000)
    return {
        "model": str(model),
        "threads": threads,
        "runs": runs,
        "input": [detector.height, detector.width],
        "input_dtype": np.dtype(detector.input["dtype"]).name,
        **_stats(inference),
        "with_preprocessing": _stats(end_to_end),
    }
