"""The model on the robot, end to end through the fake Discord and the bot's own web server: promote,
edge tokens made, listed and revoked in Discord, what `fieldlens-edge pull` gets (the promoted model,
never a flagged one), target zips, and `/model test` and `fieldlens-edge run` agreeing by default."""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from edge.pull import PullError, pull, rollback
from storage.voc.synth import make_voc_zip
from testkit.fake_discord import MEMBER
from testkit.world import World
from tests.model_folders import write_model_folder

STRING, INTEGER, ATTACHMENT = 3, 4, 11


def register(world: World, folder: Path, name: str) -> int:
    team = world.team_a.id
    return world.call(lambda: world.bot.services.models.register(team, folder, name).id)


@pytest.fixture(scope="module")
def models(world: World, tmp_path_factory) -> dict[str, int]:
    """Team A's models: two good ones, then a newer one that failed the int8 check."""
    root = tmp_path_factory.mktemp("robot-models")
    return {
        name: register(world, write_model_folder(root / name, int8_ok=name != "flagged").path, name)
        for name in ("first", "second", "flagged")
    }


def server(world: World) -> str:
    return f"http://127.0.0.1:{world.bot.web_port}"


def token_from(interaction) -> str:
    match = re.search(r"--token (\S+)", interaction.text())
    assert match, interaction.text()
    return match.group(1)


def pulled_id(version: Path) -> int:
    return json.loads((version / "manifest.json").read_text())["model_id"]


def test_robots_pull_what_the_team_chose_and_tokens_are_managed_in_discord(
    world: World, models: dict[str, int], tmp_path
) -> None:
    a = world.team_a
    made = world.slash("model token create", guild=a, options={"name": (STRING, "competition bot")})
    assert made.ephemeral and "shown this once" in made.text()
    assert f"fieldlens-edge pull --server {world.settings.public_url} --token" in made.text()
    token = token_from(made)
    robot = tmp_path / "robot"

    # Before any promotion: the newest model that passed the int8 check; the flagged one is never served.
    first_pull = pull(server(world), token, robot)
    assert pulled_id(first_pull) == models["second"]
    request = urllib.request.Request(
        f"{server(world)}/api/v1/models/{models['flagged']}/files/model_int8.tflite",
        headers={"Authorization": f"Bearer {token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 404

    # A member without the team role may not promote; a flagged model cannot be promoted.
    member = world.slash(
        "model promote", guild=a, perms=MEMBER, options={"model": (INTEGER, models["first"])}
    )
    assert "administrators" in member.text() and member.ephemeral
    flagged = world.slash("model promote", guild=a, options={"model": (INTEGER, models["flagged"])})
    assert "failed the int8 check" in flagged.text()

    promoted = world.slash("model promote", guild=a, options={"model": (INTEGER, models["first"])})
    assert f"Model {models['first']} (first) is now the team's robot model" in promoted.text()
    assert f"/models/{models['first']}?" in promoted.text()  # its page
    newer = register(world, write_model_folder(tmp_path / "newer").path, "newer")
    version = pull(server(world), token, robot)
    assert pulled_id(version) == models["first"]  # the promoted model, not the newer one
    assert pulled_id(rollback(robot)) == models["second"]  # the model the pull replaced
    assert pulled_id(rollback(robot)) == models["first"]

    listed = world.slash("model list", guild=a).text()
    assert f"model {models['first']} **first**" in listed and "promoted: robots pull it" in listed
    assert "flagged: failed the int8 check" in listed and f"Robots pull model {models['first']}" in listed
    info = world.slash("model info", guild=a, options={"model": (INTEGER, models["first"])}).text()
    assert "Promoted" in info
    assert (
        "failed the int8 check"
        in world.slash("model info", guild=a, options={"model": (INTEGER, models["flagged"])}).text()
    )

    tokens = world.slash("model token list", guild=a)
    assert tokens.ephemeral and "**competition bot**" in tokens.text() and "last pull" in tokens.text()
    revoked = world.slash("model token revoke", guild=a, options={"name": (STRING, "competition bot")})
    assert "is revoked" in revoked.text()
    with pytest.raises(PullError, match="refused the token"):
        pull(server(world), token, robot)
    assert pulled_id((robot / "current").resolve()) == models["first"]  # the robot keeps its model
    assert "No edge tokens yet" in world.slash("model token list", guild=a).text()
    assert newer > models["flagged"]


def test_tokens_are_per_team_and_need_the_role(world: World, models: dict[str, int], tmp_path) -> None:
    refused = world.slash(
        "model token create", guild=world.team_a, perms=MEMBER, options={"name": (STRING, "x")}
    )
    assert "administrators" in refused.text()
    theirs = token_from(
        world.slash("model token create", guild=world.team_b, options={"name": (STRING, "b")})
    )
    with pytest.raises(PullError, match="no model for this team's robots"):
        pull(server(world), theirs, tmp_path / "robot-b")  # team B has no model; A's are not theirs


def test_download_for_a_target_is_a_zip_with_a_howto(world: World, models: dict[str, int]) -> None:
    a, model = world.team_a, models["second"]
    attached = world.slash(
        "model download",
        guild=a,
        wait="done",
        options={"model": (INTEGER, model), "target": (STRING, "limelight")},
    )
    assert attached.files() == [f"fieldlens-model-{model}-limelight.zip"] and "HOW-TO.txt" in attached.text()
    assert f"/models/{model}?" in attached.text()  # its page
    world.team_a.filesize_limit = 1000  # too big to attach: a signed link to the zip instead
    try:
        linked = world.slash(
            "model download",
            guild=a,
            wait="done",
            options={"model": (INTEGER, model), "target": (STRING, "pi")},
        )
    finally:
        world.team_a.filesize_limit = 10 * 1024 * 1024
    (url,) = re.findall(r"\((http://[^)]+)\)", linked.text())
    assert f"/models/{model}?" in linked.text()
    url = url.replace("127.0.0.1:0", f"127.0.0.1:{world.bot.web_port}")
    with urllib.request.urlopen(url) as response:
        assert response.headers["Content-Disposition"].endswith(f'fieldlens-model-{model}-pi.zip"')
        names = zipfile.ZipFile(io.BytesIO(response.read())).namelist()
    assert {"HOW-TO.txt", "fieldlens/model_int8.tflite", "fieldlens/fieldlens-edge.service"} <= set(names)


@pytest.fixture(scope="module")
def trained_id(world: World, trained_model) -> int:
    return register(world, trained_model.out_dir, "tiny")


@pytest.mark.slow
def test_model_test_and_fieldlens_edge_run_give_the_same_detections_by_default(
    world: World, trained_id: int, trained_model, tmp_path
) -> None:
    from edge.cli import main

    with zipfile.ZipFile(io.BytesIO(make_voc_zip(images=40, seed=21))) as z:
        photo = z.read(sorted(n for n in z.namelist() if n.startswith("JPEGImages/"))[0])
    attachment = world.fake.add_attachment("robot.jpg", photo, "image/jpeg")
    answer = world.slash(
        "model test",
        guild=world.team_a,
        wait="done",
        options={"model": (INTEGER, trained_id), "image": (ATTACHMENT, attachment["id"])},
        resolved={"attachments": {attachment["id"]: attachment}},
    ).text()
    in_discord = re.findall(r"`([^`]+)` (\d\.\d\d)", answer)
    (tmp_path / "robot.jpg").write_bytes(photo)
    model = trained_model.out_dir / "model_int8.tflite"
    run = CliRunner().invoke(
        main, ["run", "--model", str(model), "--source", str(tmp_path / "robot.jpg"), "--json"]
    )
    assert run.exit_code == 0, run.output
    (record,) = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    on_robot = [(d["label"], f"{d['score']:.2f}") for d in record["detections"]]
    assert in_discord == on_robot and in_discord, (answer, record)
    thresholds = trained_model.manifest.thresholds
    assert f"score thresholds {thresholds.overall.score:.2f}" in answer and "from the model" in answer


@pytest.mark.slow
def test_compare_two_models_on_the_same_images(world: World, trained_id: int, trained_model) -> None:
    attachment = world.fake.add_attachment("shapes.zip", make_voc_zip(images=40, seed=21))
    world.slash(
        "dataset upload",
        guild=world.team_a,
        wait="done",
        options={"name": (STRING, "shapes"), "file": (ATTACHMENT, attachment["id"])},
        resolved={"attachments": {attachment["id"]: attachment}},
    )
    again = register(world, trained_model.out_dir, "tiny again")
    text = world.slash(
        "model compare",
        guild=world.team_a,
        wait="done",
        options={"a": (INTEGER, trained_id), "b": (INTEGER, again), "dataset": (STRING, "shapes")},
    ).text()
    assert re.search(rf"Model {trained_id} \(tiny\) and model {again} \(tiny again\) on \d+ images", text)
    assert "validation split of shapes" in text and "latency (median)" in text
    assert f"/models/{trained_id}?" in text and f"/models/{again}?" in text  # both pages
    rows = {
        line.split("  ")[0]: line.split()[-2:] for line in text.splitlines() if line.startswith("mAP@0.5 ")
    }
    (first, second) = rows["mAP@0.5"]
    assert first == second  # the same model on the same images
    no_job = world.slash(
        "model compare",
        guild=world.team_a,
        wait="done",
        options={"a": (INTEGER, trained_id), "b": (INTEGER, again)},
    )
    assert "Name a dataset to compare on" in no_job.text()
