"""A delivered model folder: the names of its files and its manifest, in one place.

    model_int8.tflite   fully int8 (uint8 input), ends in TFLite_Detection_PostProcess
    model_float.tflite  the same network in float32
    labels.txt          one label per line, in class-index order
    config.json         the training config
    model.weights.h5    the Keras weights, to continue training from this model
    predictions.png     ground truth next to the int8 model's detections, on a few images
    curves.png          loss and mAP curves (when the training run's logs were there)
    quality.png         precision-recall curve per label and the confusion matrix, at the model's thresholds
    manifest.json       a `Manifest`: model, input size, labels, config, metrics, verdict, sha256 of each file

The trainer writes the folder (trainer/pipeline.py); everything else reads it through `ModelFolder`
and `Manifest`, never by file name. A robot's copy is laid out by the edge runtime (edge/pull.py).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from storage.blobs import atomic_write, sha256_hex
from storage.errors import UserError
from storage.thresholds import Thresholds

MANIFEST = "manifest.json"
INT8 = "model_int8.tflite"
FLOAT = "model_float.tflite"
LABELS = "labels.txt"
CONFIG = "config.json"
WEIGHTS = "model.weights.h5"
PREDICTIONS = "predictions.png"
CURVES = "curves.png"
QUALITY = "quality.png"
# What edgetpu_compiler names its compilation of INT8 (only in a Limelight zip, never in a model folder).
EDGE_TPU_MODEL = INT8.replace(".tflite", "_edgetpu.tflite")
# Packed inside the int8 model (a zip appended to it, as TFLite metadata's associated files are).
PACKED_THRESHOLDS = "thresholds.json"

# Files a robot may download, by manifest key.
EDGE_FILES = {"int8": INT8, "labels": LABELS}
# Pictures posted with a finished job.
PICTURES = (CURVES, PREDICTIONS, QUALITY)
# Files a signed download link may name.
DOWNLOADABLE = frozenset({*EDGE_FILES.values(), FLOAT, MANIFEST})

# 1: the first manifest with a version (older folders have none and read as 1).
FORMAT_VERSION = 1


class NotAModelFolder(UserError):
    """The folder has no manifest."""


class ManifestTooNew(UserError):
    """The manifest was written by a newer FieldLens than this one."""


@dataclass(frozen=True)
class FileEntry:
    """One delivered file: its name in the folder, sha256 and size."""

    path: str
    sha256: str
    bytes: int

    @classmethod
    def of(cls, path: Path) -> FileEntry:
        data = path.read_bytes()
        return cls(path.name, sha256_hex(data), len(data))


@dataclass(frozen=True)
class Metrics:
    """COCO figures of the float and int8 models on the same images; `by_model` holds every figure
    of each ("float", "int8"), the four mAPs are repeated at the top."""

    map50_float: float
    map50_int8: float
    map50_95_float: float
    map50_95_int8: float
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)

    def headline(self) -> dict[str, float]:
        """The four mAP figures (what the models table keeps)."""
        return {
            "map50_float": self.map50_float,
            "map50_int8": self.map50_int8,
            "map50_95_float": self.map50_95_float,
            "map50_95_int8": self.map50_95_int8,
        }

    @property
    def per_class_ap50(self) -> dict[str, float]:
        """AP@0.5 per label of the int8 model (the one delivered)."""
        return dict(self.by_model.get("int8", {}).get("per_class_ap50", {}))

    def to_dict(self) -> dict[str, Any]:
        return {**self.headline(), **self.by_model}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Metrics:
        return cls(
            float(data["map50_float"]),
            float(data["map50_int8"]),
            float(data["map50_95_float"]),
            float(data["map50_95_int8"]),
            {k: v for k, v in data.items() if isinstance(v, dict)},
        )


@dataclass(frozen=True)
class Manifest:
    """manifest.json: what a model folder holds and how good the model is."""

    model: str
    input_size: int
    labels: list[str]
    created_at: str
    config: dict[str, Any]  # the TrainConfig, as saved in config.json
    signature: dict[str, Any]  # the int8 model's input and outputs, as checked in LiteRT
    evaluated_on: str
    metrics: Metrics
    int8_ok: bool  # both mAPs within the allowed drop of float's (the mean over the gate's evaluations)
    verdict: str
    advice: list[str]
    training: dict[str, Any] | None  # steps_completed, reason, seconds, images_per_second
    host: str
    files: dict[str, FileEntry]
    version: int = FORMAT_VERSION
    # The int8 model's score thresholds (storage/thresholds.py); None in models delivered before them.
    # Older readers ignore the key, so the format version stays 1.
    thresholds: Thresholds | None = None

    def to_json(self) -> str:
        data = {**asdict(self), "metrics": self.metrics.to_dict()}
        return json.dumps(data, indent=2, default=float)

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        data = json.loads(text)
        version = int(data.get("version", 1))
        if version > FORMAT_VERSION:
            raise ManifestTooNew(
                f"This model's manifest has format version {version}; this FieldLens reads up to "
                f"{FORMAT_VERSION}. Update FieldLens to use the model."
            )
        return cls(
            model=data["model"],
            input_size=int(data["input_size"]),
            labels=list(data["labels"]),
            created_at=data["created_at"],
            config=dict(data["config"]),
            signature=dict(data["signature"]),
            evaluated_on=data["evaluated_on"],
            metrics=Metrics.from_dict(data["metrics"]),
            int8_ok=bool(data["int8_ok"]),
            verdict=data["verdict"],
            advice=list(data.get("advice", [])),
            training=data.get("training"),
            host=data.get("host", ""),
            files={k: FileEntry(**v) for k, v in data["files"].items()},
            version=version,
            thresholds=Thresholds.from_dict(data.get("thresholds")),
        )


class ModelFolder:
    """Paths of a model folder's files, and its manifest."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def given(cls, path: str | Path) -> ModelFolder:
        """A folder a user named: refused with a sentence unless it holds a manifest."""
        folder = cls(path)
        if not folder.manifest_path.is_file():
            raise NotAModelFolder(
                f"{folder.path} has no {MANIFEST}; give the folder that `fieldlens train run` wrote."
            )
        return folder

    @property
    def int8_model(self) -> Path:
        return self.path / INT8

    @property
    def float_model(self) -> Path:
        return self.path / FLOAT

    @property
    def labels(self) -> Path:
        return self.path / LABELS

    @property
    def config(self) -> Path:
        return self.path / CONFIG

    @property
    def weights(self) -> Path:
        return self.path / WEIGHTS

    @property
    def predictions(self) -> Path:
        return self.path / PREDICTIONS

    @property
    def curves(self) -> Path:
        return self.path / CURVES

    @property
    def quality(self) -> Path:
        return self.path / QUALITY

    @property
    def manifest_path(self) -> Path:
        return self.path / MANIFEST

    def edge_files(self) -> list[Path]:
        """The files a robot needs: the int8 model and its labels."""
        return [self.path / name for name in EDGE_FILES.values()]

    def pictures(self) -> list[Path]:
        """The curves and predictions pictures that exist."""
        return [self.path / name for name in PICTURES if (self.path / name).exists()]

    def manifest(self) -> Manifest:
        """The manifest (a folder without one is a broken install: FileNotFoundError)."""
        return Manifest.from_json(self.manifest_path.read_text())

    def write_manifest(self, manifest: Manifest) -> None:
        atomic_write(self.manifest_path, manifest.to_json().encode())
