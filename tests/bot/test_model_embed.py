"""The model card the bot posts: a label validation could not measure is said so, not shown as AP 0."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from bot.ui import model_embed
from storage.domain import Model
from tests.model_folders import write_model_folder

LABELS = ["circle", "square", "triangle"]


def _card(tmp_path: Path, measured: list[str]):
    manifest = write_model_folder(tmp_path / "m", labels=LABELS).manifest()
    figures = {"map50": 0.8, "map50_95": 0.4, "per_class_ap50": {label: 0.8 for label in measured}}
    metrics = dataclasses.replace(manifest.metrics, by_model={"float": figures, "int8": figures})
    model = Model(1, "local", 1, "m", datetime.now(UTC), str(tmp_path / "m"), LABELS)
    return {
        f.name: f.value for f in model_embed(model, dataclasses.replace(manifest, metrics=metrics)).fields
    }


def test_a_label_no_validation_image_shows_is_named_as_not_measured(tmp_path: Path) -> None:
    fields = _card(tmp_path, ["circle", "square"])
    assert "`triangle`" not in fields["AP@0.5 per label (int8)"]
    assert fields["Not measured"] == "No validation image shows `triangle`."


def test_a_model_measured_on_every_label_has_no_such_line(tmp_path: Path) -> None:
    fields = _card(tmp_path, LABELS)
    assert "Not measured" not in fields and "`triangle` 0.800" in fields["AP@0.5 per label (int8)"]
