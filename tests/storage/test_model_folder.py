"""The model folder's manifest and the checkpoint layout: one owner each, read and written here."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.checkpoints import Checkpoints, latest_step
from storage.model_folder import FORMAT_VERSION, Manifest, ManifestTooNew, ModelFolder, NotAModelFolder
from tests.model_folders import write_model_folder


def test_manifest_round_trips_and_keeps_the_json_layout(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "m", labels=["ball", "cone"])
    manifest = folder.manifest()
    assert Manifest.from_json(manifest.to_json()) == manifest
    data = json.loads(folder.manifest_path.read_text())
    assert data["version"] == FORMAT_VERSION
    # the layout robots and older readers know: headline figures beside one dict per model
    assert {"map50_int8", "map50_float", "int8", "float"} <= set(data["metrics"])
    assert data["files"]["int8"] == {
        "path": folder.int8_model.name,
        "sha256": manifest.files["int8"].sha256,
        "bytes": folder.int8_model.stat().st_size,
    }
    assert manifest.metrics.per_class_ap50 == {"ball": 0.9, "cone": 0.9}


def test_a_manifest_without_a_version_is_read_as_version_1(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "m")
    data = json.loads(folder.manifest_path.read_text())
    del data["version"]
    folder.manifest_path.write_text(json.dumps(data))
    assert folder.manifest().version == 1


def test_a_newer_manifest_is_refused_with_what_to_do(tmp_path: Path) -> None:
    folder = write_model_folder(tmp_path / "m")
    data = json.loads(folder.manifest_path.read_text())
    data["version"] = FORMAT_VERSION + 1
    folder.manifest_path.write_text(json.dumps(data))
    with pytest.raises(ManifestTooNew, match="Update FieldLens"):
        folder.manifest()


def test_a_folder_a_user_names_must_hold_a_manifest(tmp_path: Path) -> None:
    with pytest.raises(NotAModelFolder, match=r"has no manifest\.json"):
        ModelFolder.given(tmp_path)
    assert ModelFolder.given(write_model_folder(tmp_path / "m").path).path == tmp_path / "m"


def test_checkpoints_commit_point_latest_and_prune_the_rest(tmp_path: Path) -> None:
    checkpoints = Checkpoints(tmp_path)
    assert checkpoints.latest() is None and latest_step(str(tmp_path)) is None and latest_step(None) is None
    for step in (100, 200, 300):
        staging = checkpoints.staging(step)
        (staging / "state.json").write_text("{}")
        committed = checkpoints.commit(staging, step)
        if step == 200:
            checkpoints.keep_best(committed)
    assert checkpoints.latest() == checkpoints.step_folder(300)
    assert latest_step(str(tmp_path)) == 300
    checkpoints.staging(400)  # a checkpoint cut short by a crash
    assert checkpoints.prune() == 3  # steps 100 and 200, and the half-written 400
    assert sorted(p.name for p in checkpoints.folder.iterdir()) == ["best", "latest.json", "step-0000300"]
    assert (checkpoints.best / "state.json").exists()
