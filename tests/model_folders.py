"""A model folder written without training: a real manifest (storage.model_folder) and stand-in model
files, for tests of what reads model folders (registering, continuing, the bot's /model commands)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from storage.model_folder import FileEntry, Manifest, Metrics, ModelFolder
from storage.thresholds import Thresholds

# Not a runnable model: the first bytes of a FlatBuffer with the TFLite identifier, then padding.
STAND_IN_TFLITE = b"\x1c\x00\x00\x00TFL3" + bytes(2000)


def write_model_folder(
    path: Path,
    labels: Sequence[str] = ("circle", "square", "triangle"),
    model: str = "ssd_mobilenet_v2_320",
    config: dict[str, object] | None = None,
    map50: float = 0.9,
    int8_ok: bool = True,
    thresholds: Thresholds | None = None,
) -> ModelFolder:
    folder = ModelFolder(path)
    folder.path.mkdir(parents=True, exist_ok=True)
    folder.int8_model.write_bytes(STAND_IN_TFLITE)
    folder.labels.write_text("\n".join(labels) + "\n")
    per_class = {label: map50 for label in labels}
    figures = {"map50": map50, "map50_95": map50 / 2, "per_class_ap50": per_class}
    manifest = Manifest(
        model=model,
        input_size=128,
        labels=list(labels),
        created_at="2025-01-01T00:00:00+00:00",
        config=config or {"input_size": 128, "alpha": 0.35, "head_channels": 0},
        signature={},
        evaluated_on="validation",
        metrics=Metrics(map50, map50, map50 / 2, map50 / 2, {"float": figures, "int8": figures}),
        int8_ok=int8_ok,
        verdict=f"int8 mAP@0.5 {map50:.3f} vs float {map50:.3f} on the validation images.",
        advice=[],
        training=None,
        host="test",
        files={"int8": FileEntry.of(folder.int8_model), "labels": FileEntry.of(folder.labels)},
        thresholds=thresholds,
    )
    folder.write_manifest(manifest)
    return folder
