"""The `fieldlens` CLI: every command through click, real storage underneath."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fieldlens.cli import cli, subcommands
from storage.voc.synth import DEFAULT_LABELS, make_voc_zip
from tests import exports
from tests.vocdata import good_files, make_zip, voc_xml


@pytest.fixture
def run(tmp_path):
    runner = CliRunner()
    home = str(tmp_path / "home")

    def invoke(*args: str, ok: bool = True):
        result = runner.invoke(cli, ["--home", home, *args], catch_exceptions=False)
        assert (result.exit_code == 0) == ok, result.output
        return result

    return invoke


def _walk(group: click.Group, prefix: tuple[str, ...] = ()):
    yield prefix, group
    for name, cmd in subcommands(group).items():
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, (*prefix, name))
        else:
            yield (*prefix, name), cmd


@pytest.mark.parametrize("path", [p for p, _ in _walk(cli)], ids=lambda p: " ".join(p) or "fieldlens")
def test_help_is_useful_on_every_level(run, path) -> None:
    out = run(*path, "--help").output
    assert "Usage:" in out
    cmd: click.Command = cli
    for name in path:
        assert isinstance(cmd, click.Group)
        cmd = subcommands(cmd)[name]
    assert cmd.help and len(cmd.help.strip()) > 15


def test_dataset_life_cycle_in_json(run, tmp_path) -> None:
    zip_path = tmp_path / "shapes.zip"
    synth = json.loads(run("dataset", "synth", str(zip_path), "--images", "12", "--json").stdout)
    assert synth["images"] == 12 and zip_path.exists()

    added = json.loads(run("dataset", "add", str(zip_path), "--name", "shapes", "--json").stdout)
    assert {"name", "images", "boxes", "labels", "warnings", "errors"} <= set(added)
    assert added["images"] == 12 and added["errors"] == []
    assert sum(added["labels"].values()) == added["boxes"]

    listed = json.loads(run("dataset", "list", "--json").stdout)
    assert [d["name"] for d in listed] == ["shapes"]
    shown = json.loads(run("dataset", "show", "shapes", "--json").stdout)
    assert shown["boxes"] == added["boxes"]

    png = tmp_path / "p.png"
    run("dataset", "preview", "shapes", "--out", str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    (tmp_path / "more.zip").write_bytes(make_voc_zip(images=5, seed=11))
    run("dataset", "add", str(tmp_path / "more.zip"), "--name", "more")
    combined = json.loads(run("dataset", "combine", "all", "shapes", "more", "--json").stdout)
    assert combined["images"] == 17

    run("dataset", "delete", "more", "--yes")
    assert {d["name"] for d in json.loads(run("dataset", "list", "--json").stdout)} == {"shapes", "all"}


def test_refusal_exits_non_zero_with_a_sentence(run, tmp_path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"nope")
    result = run("dataset", "add", str(bad), "--name", "bad", "--json", ok=False)
    payload = json.loads(result.stdout)
    assert "not a readable zip" in payload["errors"][0]
    text = run("dataset", "add", str(bad), "--name", "bad", ok=False)
    assert "Error: This file is not a readable zip" in text.output
    assert "Traceback" not in text.output


def test_refused_dataset_reports_its_warnings(run, tmp_path) -> None:
    files = {
        "JPEGImages/a.jpg": good_files(1)["JPEGImages/img0.jpg"],
        "Annotations/a.xml": voc_xml(objects=[]),
    }
    (tmp_path / "empty.zip").write_bytes(make_zip(files))
    payload = json.loads(
        run("dataset", "add", str(tmp_path / "empty.zip"), "--name", "e", "--json", ok=False).stdout
    )
    assert "has a box" in payload["errors"][0]


def test_other_teams_datasets_are_not_found(run, tmp_path) -> None:
    (tmp_path / "s.zip").write_bytes(make_voc_zip(images=4, seed=1))
    run("dataset", "add", str(tmp_path / "s.zip"), "--name", "ours", "--team", "111")
    result = run("dataset", "show", "ours", "--team", "222", ok=False)
    assert "No dataset named 'ours'" in result.output


def test_demo_ingests_the_sample_dataset_twice_safely(run) -> None:
    first = json.loads(run("demo", "--images", "20", "--steps", "0", "--json").stdout)
    assert first["dataset"]["images"] == 20
    second = json.loads(run("demo", "--images", "20", "--steps", "0", "--json").stdout)
    assert second["dataset"]["id"] == first["dataset"]["id"]


def test_demo_minutes_bound_the_job_and_its_schedule(run, tmp_path) -> None:
    """`fieldlens demo --minutes 2`: the job reserves 2 minutes, its training ends there, and the
    learning rate has annealed to zero by then, however many steps are left."""
    from fieldlens.cli.demo import queue_demo_job
    from storage.services import open_services
    from storage.settings import Settings
    from trainer.job_runner import job_config
    from trainer.pacing import Schedule

    run("demo", "--images", "20", "--steps", "0")
    services = open_services(Settings(home=tmp_path / "home"))
    job = queue_demo_job(services, steps=5000, minutes=2)
    assert job.max_minutes == 2
    config = job_config(job, DEFAULT_LABELS)
    assert (config.steps, config.max_seconds) == (5000, 120)
    schedule = Schedule(config.learning_rate, config.steps, config.warmup_steps, config.max_seconds)
    assert schedule(100, seconds=60) > 0.4 * config.learning_rate
    assert schedule(101, seconds=120) == 0.0


@pytest.mark.slow
def test_train_run_then_model_show(run, tmp_path) -> None:
    (tmp_path / "s.zip").write_bytes(make_voc_zip(images=16, seed=4))
    run("dataset", "add", str(tmp_path / "s.zip"), "--name", "s")
    out = tmp_path / "model"
    result = json.loads(
        run(
            "train",
            "run",
            "--dataset",
            "s",
            "--steps",
            "3",
            "--batch-size",
            "8",
            "--input-size",
            "96",
            "--alpha",
            "0.35",
            "--weights",
            "none",
            "--out",
            str(out),
            "--json",
        ).stdout
    )
    assert result["steps_completed"] == 3
    assert {"map50_float", "map50_int8", "map50_95_int8"} <= set(result)
    assert {"int8", "float", "labels", "manifest"} <= set(result["files"])
    assert all(Path(p).exists() for p in result["files"].values())
    shown = json.loads(run("model", "show", str(out), "--json").stdout)
    assert shown["labels"] == ["circle", "square", "triangle"]
    assert "mAP@0.5" in run("model", "show", str(out)).stdout


def test_train_run_refuses_unknown_dataset(run) -> None:
    result = run("train", "run", "--dataset", "nope", "--json", ok=False)
    assert "No dataset named 'nope'" in json.loads(result.stdout)["errors"][0]


def test_job_and_budget_commands_without_a_worker(run, tmp_path: Path) -> None:
    zip_path = tmp_path / "s.zip"
    make_voc_zip(zip_path, images=24, seed=3)
    run("dataset", "add", str(zip_path), "--name", "shapes")
    started = json.loads(run("job", "start", "--dataset", "shapes", "--steps", "150", "--json").stdout)
    assert started["state"] == "QUEUED" and started["minutes_left"] == 540
    assert started["plan"]["batch_size"] == 16
    text = run("job", "start", "--dataset", "shapes", "--max-minutes", "10").stdout
    assert "batch size 16" in text and "steps per epoch" in text and "Queued job 2" in text
    listed = json.loads(run("job", "list", "--json").stdout)
    assert [j["id"] for j in listed] == [2, 1]
    status = json.loads(run("job", "status", "1", "--json").stdout)
    assert {"id", "state", "steps_completed", "training_seconds"} <= set(status)
    stopped = json.loads(run("job", "stop", "1", "--json").stdout)
    assert stopped["state"] == "CANCELED"
    assert json.loads(run("budget", "show", "--json").stdout)["minutes_left"] == 590
    refused = run("job", "start", "--dataset", "shapes", "--max-minutes", "600", "--json", ok=False)
    assert "590 min left" in json.loads(refused.stdout)["errors"][0]
    assert json.loads(run("budget", "grant", "local", "30", "--json").stdout)["minutes_left"] == 620
    other = run("job", "status", "1", "--team", "999", ok=False)
    assert "No job 1 in this team" in other.stderr
    assert json.loads(run("job", "wait", "1", "--json").stdout)["state"] == "CANCELED"


@pytest.mark.parametrize(
    ("make", "layout", "converter"),
    [
        (lambda ps: exports.roboflow_voc(ps), "Roboflow Pascal VOC", "voc"),
        (lambda ps: exports.classic_voc(ps, prefix="VOCdevkit/VOC2012/"), "Pascal VOC devkit", "voc"),
        (lambda ps: exports.plain_coco(ps), "COCO", "coco"),
        (lambda ps: exports.yolo(ps), "Roboflow YOLO", "yolo"),
    ],
    ids=["roboflow voc", "voc devkit", "plain coco", "yolo"],
)
def test_dataset_add_reads_export_layouts_and_info_names_them(run, tmp_path, make, layout, converter) -> None:
    ps = exports.photos(train=6, valid=3, test=2)
    path = tmp_path / "export.zip"
    path.write_bytes(make(ps))
    added = json.loads(run("dataset", "add", str(path), "--name", "ex", "--json").stdout)
    assert added["images"] == 11 and (added["layout"], added["converter"]) == (layout, converter)
    assert added["train_images"] + added["val_images"] + added["test_images"] == 11
    text = run("dataset", "info", "ex").output
    assert f"Read as: {layout} export." in text and added["split"] in text


def test_train_commands_say_what_the_bot_says(run, tmp_path: Path) -> None:
    make_voc_zip(tmp_path / "s.zip", images=24, seed=3)
    run("dataset", "add", str(tmp_path / "s.zip"), "--name", "shapes")
    started = json.loads(run("train", "start", "--dataset", "shapes", "--json").stdout)
    assert started["steps"] == 100  # 19 training images at batch 16: ~100 epochs, one checkpoint
    assert "Job 1 was canceled before it started" in run("train", "stop", "1").stdout
    retried = run("train", "retry", "1", "--batch-size", "8").stdout
    assert "Retrying job 1 from the start as job 2" in retried and "batch size 8" in retried
    status = run("train", "status", "2").stdout
    assert status.startswith("job 2 ") and "Waiting for a free trainer" in status
    refused = run("train", "retry", "2", ok=False)
    assert "Job 2 is still QUEUED; retry it once it has ended, or stop it first." in refused.stderr
    assert "Dataset 'shapes'" in run("dataset", "info", "shapes").stdout
