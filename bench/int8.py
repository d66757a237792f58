"""How far a delivered int8 model is from its float model, with the evaluation's own noise beside it,
and which layers quantize worst.

    python -m bench.int8 MODEL_DIR [--zip ../shared/datasets/robosub_transdec.zip] [--copies 5]
                                   [--layers 20] [--float-layers NAME ...]

MODEL_DIR is a delivered model folder (`bench.accuracy run --out DIR`, or a job's model folder): its
config, Keras weights and both .tflite files. The zip is the dataset it was trained on, ingested again
into a temporary data folder, which draws the same validation split (the split depends on the photos
and the dataset's seed only).

1. The drop, and how much of it is noise (trainer/verify.py::int8_drop, what the delivery's int8 gate
   judges with 2-10 copies). Both models run on the validation images as they are, then on `--copies`
   copies in which every pixel moved by -1, 0 or +1 grey level at random: a change nobody can see,
   and no model should care about. On a few hundred images one evaluation's mAP moves with it, so
   one evaluation's int8 drop does too; the mean drop over the copies, with its spread, says whether
   a drop belongs to the int8 model or to the evaluation.
2. `--layers N`: TFLite's quantization debugger runs the int8 model layer by layer beside the float
   one (each int8 layer on the same quantized inputs) and prints the N layers with the largest error,
   as RMSE in units of the layer's quantization step: rounding alone gives 0.29.
3. `--float-layers NAME ...`: where the drop sits. The int8 model is built again from the folder's
   weights as delivery builds it (stem equalized, biases corrected, box clip, the same calibration
   images), except that every op whose name contains one of the NAMEs stays in float (the
   quantization debugger's `denylisted_nodes`: a diagnostic, not a deliverable), and its drop is
   measured as in 1. E.g.
   `--float-layers Conv1 expanded_conv_` leaves MobileNetV2's first three layers in float,
   `--float-layers box_head class_head extra` the heads.
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

TREE = Path(__file__).resolve().parents[1]
SHARED = TREE.parent / "shared"
ROUNDING = 1 / np.sqrt(12)  # RMSE of rounding to a grid, in grid steps


def show_drop(noise: dict) -> None:
    """Print each evaluation of trainer.verify.int8_drop, then the mean and spread."""
    for i, (f50, f95, q50, q95) in enumerate(noise["figures"]):
        print(
            f"{'as they are' if i == 0 else f'copy {i}':>11}: float {f50:.3f} / {f95:.3f}, "
            f"int8 {q50:.3f} / {q95:.3f}, int8 below float {f50 - q50:+.3f} / {f95 - q95:+.3f}"
        )
    (m50, m95), (s50, s95), (f50, f95) = noise["mean"], noise["sd"], noise["float_sd"]
    print(
        f"int8 below float over {noise['evaluations']} evaluations: mAP@0.5 {m50:+.4f} (sd {s50:.4f}), "
        f"mAP@0.5:0.95 {m95:+.4f} (sd {s95:.4f}); the float model's own sd {f50:.4f} / {f95:.4f}"
    )


def delivered_detector(config, weights: Path, calibration):
    """The detector with `weights` as delivery converts it to int8: the stem equalized and the biases
    corrected for rounding on `calibration` (trainer/deliver.py::export, trainer/export.py::convert)."""
    from trainer.bias import correct_biases
    from trainer.models import build_detector
    from trainer.stem import equalize_stem

    detector = build_detector(config.with_(weights="none"))
    detector.network.load_weights(str(weights))
    equalize_stem(detector.network, calibration)
    correct_biases(detector.network, calibration)
    return detector


def layer_errors(config, weights: Path, calibration, images: np.ndarray, worst: int) -> list[dict]:
    """The `worst` layers by RMSE / quantization step, from TFLite's quantization debugger."""
    import tensorflow as tf

    from trainer.export import converter, save_module

    detector = delivered_detector(config, weights, calibration)
    with tempfile.TemporaryDirectory() as tmp:
        save_module(detector, Path(tmp))
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter(tmp, calibration),
            debug_dataset=lambda: ([image[None].astype(np.float32)] for image in images),
        )
        debugger.run()
    text = io.StringIO()
    debugger.layer_statistics_dump(text)
    layers = []
    for row in csv.DictReader(io.StringIO(text.getvalue())):
        scale = float(row["scale"])
        if scale > 0:
            layers.append(
                {
                    "op": row["op_name"],
                    # the converter names a fused op after all it fused; the first name is the layer
                    "layer": row["tensor_name"].split(";")[0],
                    "steps": float(np.sqrt(float(row["mean_squared_error"])) / scale),
                    "range": 255 * scale,
                }
            )
    layers.sort(key=lambda r: -r["steps"])
    return layers[:worst]


def partly_float_model(config, weights: Path, train, calibration, names: list[str], out: Path) -> int:
    """Write to `out` the int8 model as delivered but with the ops named by `names` in float; returns
    how many ops stayed float."""
    import tensorflow as tf

    from trainer.export import converter, save_module, standardize_outputs

    detector = delivered_detector(config, weights, calibration)

    def one() -> Iterator[list[np.ndarray]]:  # the debugger needs a dataset; only the model is kept
        yield [next(calibration())]

    with tempfile.TemporaryDirectory() as tmp:
        save_module(detector, Path(tmp), box_bound=detector.box_bound(train))
        probe = tf.lite.experimental.QuantizationDebugger(
            converter=converter(tmp, calibration), debug_dataset=one
        )
        text = io.StringIO()
        probe.run()
        probe.layer_statistics_dump(text)
        ops = [row["tensor_name"] for row in csv.DictReader(io.StringIO(text.getvalue()))]
        chosen = [op for op in ops if any(name in op for name in names)]
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_nodes=chosen)
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter(tmp, calibration), debug_dataset=one, debug_options=options
        )
        out.write_bytes(standardize_outputs(debugger.get_nondebug_quantized_model()))
    return len(chosen)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model", type=Path, help="a delivered model folder")
    parser.add_argument("--zip", type=Path, default=SHARED / "datasets" / "robosub_transdec.zip")
    parser.add_argument("--copies", type=int, default=5, help="perturbed copies of the validation images")
    parser.add_argument("--layers", type=int, default=0, help="print the N layers that quantize worst")
    parser.add_argument("--layer-images", type=int, default=120, help="validation images for --layers")
    parser.add_argument(
        "--float-layers",
        nargs="+",
        default=[],
        metavar="NAME",
        help="ops whose names contain a NAME stay float",
    )
    args = parser.parse_args()

    from storage.model_folder import ModelFolder
    from storage.services import open_services
    from storage.settings import Settings
    from trainer.config import TrainConfig
    from trainer.data import ImageCache, calibration
    from trainer.pipeline import load_data
    from trainer.verify import int8_drop

    folder = ModelFolder(args.model)
    config = TrainConfig.load(folder.config)
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        services = open_services(Settings(home=home / "home"))
        services.datasets.add("local", "bench", args.zip)
        labels, data = load_data(services, "local", ["bench"], home / "cache")
        if tuple(labels.labels) != tuple(config.labels):
            raise SystemExit(f"{args.zip.name} has labels {labels.labels}, the model {config.labels}")
        images = np.asarray(ImageCache(data.val, config.input_size, data.cache_dir).images)
        truths = [(s.boxes, s.classes) for s in data.val]
        print(f"{args.model}: {len(images)} validation images of {args.zip.name}", flush=True)
        noise = int8_drop(
            folder.float_model, folder.int8_model, images, truths, config.labels, copies=args.copies
        )
        show_drop(noise)
        train_images = ImageCache(data.train, config.input_size, data.cache_dir)
        if args.float_layers:
            partly = home / "partly_float.tflite"
            n = partly_float_model(
                config,
                folder.weights,
                data.train,
                calibration(train_images, config.seed),
                args.float_layers,
                partly,
            )
            print(f"\nthe same with {n} ops in float ({', '.join(args.float_layers)}):", flush=True)
            show_drop(
                int8_drop(folder.float_model, partly, images, truths, config.labels, copies=args.copies)
            )
        if args.layers:
            step = max(1, len(images) // args.layer_images)
            worst = layer_errors(
                config, folder.weights, calibration(train_images, config.seed), images[::step], args.layers
            )
            print(
                f"\nlayers that quantize worst (RMSE in quantization steps; rounding alone {ROUNDING:.2f}):"
            )
            for r in worst:
                print(f"{r['steps']:6.2f}  range {r['range']:8.2f}  {r['op']:<18} {r['layer']}")


if __name__ == "__main__":
    main()
