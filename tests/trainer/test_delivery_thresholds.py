"""Delivery chooses the int8 model's thresholds on the validation images, packs them into the model and
the manifest, and draws quality.png; the packed model still computes what was evaluated."""

from __future__ import annotations

import numpy as np
import pytest

from edge.metadata import packed_thresholds, score_threshold
from storage.model_folder import ModelFolder

pytestmark = pytest.mark.slow


def test_thresholds_are_in_the_manifest_and_the_int8_model(trained_model) -> None:
    folder = ModelFolder(trained_model.out_dir)
    manifest = folder.manifest()
    chosen = manifest.thresholds
    assert chosen is not None and chosen == trained_model.manifest.thresholds
    assert chosen.chosen_on == "validation" and chosen.images == len(trained_model.data.val)
    assert 0.01 <= chosen.overall.score <= 0.99 and set(chosen.labels) <= set(manifest.labels)
    int8 = folder.int8_model.read_bytes()
    assert packed_thresholds(int8) == {
        "overall": chosen.overall.score,
        "labels": {k: v.score for k, v in chosen.labels.items()},
    }
    assert score_threshold(int8) == pytest.approx(chosen.overall.score)
    assert packed_thresholds(folder.float_model.read_bytes()) is None  # chosen for the int8 model only
    assert "Score threshold, robot:" in manifest.verdict
    assert len(chosen.confusion["matrix"]) == len(manifest.labels) + 1


def test_the_thresholds_are_the_best_f1_of_the_delivered_model(trained_model) -> None:
    """Packing changed the metadata only: the delivered file chooses the same thresholds again."""
    from trainer.data import ImageCache
    from trainer.thresholds import choose_thresholds
    from trainer.verify import run_tflite

    folder = ModelFolder(trained_model.out_dir)
    data = trained_model.data
    images = np.asarray(ImageCache(data.val, trained_model.config.input_size, data.cache_dir).images)
    truths = [(s.boxes, s.classes) for s in data.val]
    again = choose_thresholds(
        truths, run_tflite(folder.int8_model, images), trained_model.config.labels, "validation"
    )
    chosen = folder.manifest().thresholds
    assert again.overall == chosen.overall and again.labels == chosen.labels


def test_quality_picture_is_delivered_and_posted(trained_model) -> None:
    folder = ModelFolder(trained_model.out_dir)
    assert folder.quality.read_bytes().startswith(b"\x89PNG")
    assert folder.manifest().files["quality"].path == folder.quality.name
    assert folder.quality in folder.pictures()


def test_the_metadata_buffer_is_replaced_not_added(trained_model) -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.convert_bytearray_to_object(
        bytearray(ModelFolder(trained_model.out_dir).int8_model.read_bytes())
    )
    assert [m.name for m in model.metadata].count(b"TFLITE_METADATA") == 1
