"""Edge latency of the int8 and float models on this machine (the LiteRT interpreter, 2 threads).

    python -m bench.edge [--model-dir DIR] [--threads 2] [--runs 200]

With --model-dir, measures a delivered model folder (model_int8.tflite, model_float.tflite).
Without, exports an ssd_mobilenet_v2_320 (3 labels, untrained weights, calibrated on synthetic
images) once: latency depends on the architecture and input size, not on what the weights learned.
Target: int8 SSD MobileNet v2 320 under 5 ms median with 2 threads here.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def export_reference(out: Path) -> Path:
    import numpy as np

    from storage.model_folder import ModelFolder
    from trainer.config import TrainConfig
    from trainer.export import convert
    from trainer.models import build_detector

    detector = build_detector(TrainConfig(labels=("a", "b", "c"), weights="none"))
    rng = np.random.default_rng(0)

    def calibration():
        for _ in range(20):
            yield rng.integers(0, 256, (1, 320, 320, 3)).astype(np.float32)

    folder = ModelFolder(out)
    convert(detector, folder.float_model, folder.int8_model, calibration)
    folder.labels.write_text("a\nb\nc\n")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    from edge.bench import benchmark
    from storage.model_folder import ModelFolder

    with tempfile.TemporaryDirectory() as tmp:
        folder = ModelFolder(args.model_dir or export_reference(Path(tmp)))
        print(f"{'model':<20} {'MB':>6} {'median ms':>10} {'p95 ms':>8} {'fps':>7} {'+preproc ms':>12}")
        for path in (folder.int8_model, folder.float_model):
            r = benchmark(path, args.threads, args.runs)
            w = r["with_preprocessing"]
            assert isinstance(w, dict)
            size_mb = path.stat().st_size / 1e6
            print(
                f"{path.name:<20} {size_mb:>6.2f} {r['median_ms']:>10.2f} {r['p95_ms']:>8.2f} "
                f"{r['fps']:>7.1f} {w['median_ms']:>12.2f}"
            )


if __name__ == "__main__":
    main()
