"""`fieldlens model promote|export|token ...|compare` through click, real storage underneath."""

from __future__ import annotations

import json
import zipfile

import pytest
from click.testing import CliRunner

from fieldlens.cli import cli
from storage.services import open_services
from storage.settings import Settings
from tests.model_folders import write_model_folder


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def run(home):
    runner = CliRunner()

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, ["--home", str(home), *args], catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return invoke


@pytest.fixture
def models(home, tmp_path) -> dict[str, int]:
    services = open_services(Settings(home=home))
    try:
        return {
            name: services.models.register(
                "local", write_model_folder(tmp_path / name, int8_ok=ok).path, name
            ).id
            for name, ok in (("good", True), ("flagged", False))
        }
    finally:
        services.close()


def test_promote_and_list_mark_the_robot_model(run, models) -> None:
    assert "failed the int8 check" in run("model", "promote", str(models["flagged"]), ok=False).output
    assert "is now the team's robot model" in run("model", "promote", "good").output
    listed = {m["name"]: m for m in json.loads(run("model", "list", "--json").output)}
    assert listed["good"]["promoted"] and listed["flagged"]["int8_ok"] is False
    assert "FLAGGED" in run("model", "list").output


def test_tokens_are_made_listed_and_revoked(run, models) -> None:
    made = json.loads(run("model", "token", "create", "pit  laptop", "--json").output)
    assert made["name"] == "pit laptop" and f"--token {made['token']}" in made["pull"]
    assert "already has an edge token named" in run("model", "token", "create", "pit laptop", ok=False).output
    assert "pit laptop" in run("model", "token", "list").output
    assert "is revoked" in run("model", "token", "revoke", "pit laptop").output
    assert json.loads(run("model", "token", "list", "--json").output) == []


def test_export_writes_the_targets_zip(run, models, tmp_path) -> None:
    out = tmp_path / "ll.zip"
    data = json.loads(run("model", "export", "good", "--target", "ftc", "--out", str(out), "--json").output)
    assert data["zip"] == str(out)
    with zipfile.ZipFile(out) as zf:
        assert (
            "sdcard/FIRST/tflitemodels/model_int8.tflite" in zf.namelist() and "HOW-TO.txt" in zf.namelist()
        )


def test_compare_needs_images_the_model_did_not_train_on(run, models) -> None:
    refused = run("model", "compare", "good", str(models["flagged"]), ok=False).output
    assert "Name a dataset to compare on" in refused
