"""Every slash command through the real discord.py client, against the fake Discord (no training here)."""

from __future__ import annotations

import io
import logging
import re
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import pytest

from storage.voc.synth import make_voc_zip
from testkit.fake_discord import MEMBER
from testkit.world import World
from tests.bot.conftest import OPERATOR
from tests.model_folders import write_model_folder
from tests.vocdata import make_zip

STRING, INTEGER, CHANNEL, ROLE, ATTACHMENT = 3, 4, 7, 8, 11


def upload(world: World, name: str, data: bytes, guild=None, **kwargs):
    guild = guild or world.team_a
    attachment = world.fake.add_attachment(f"{name}.zip", data)
    return world.slash(
        "dataset upload",
        guild=guild,
        wait="done",
        options={"name": (STRING, name), "file": (ATTACHMENT, attachment["id"])},
        resolved={"attachments": {attachment["id"]: attachment}},
        **kwargs,
    )


@pytest.fixture(scope="module")
def shapes_upload(world: World):
    """The upload of team A's "shapes" dataset (its interaction), once per module."""
    return upload(world, "shapes", make_voc_zip(images=40, seed=21))


@pytest.fixture(scope="module")
def shapes(shapes_upload) -> str:
    assert "Stored dataset **shapes**" in shapes_upload.text(), shapes_upload.text()
    return "shapes"


@pytest.fixture(scope="module")
def model_id(world: World, tmp_path_factory: pytest.TempPathFactory) -> int:
    """A model folder written without training (a real manifest, stand-in model bytes), registered as
    team A's model: enough for every /model command but `test`, which runs the model."""
    folder = write_model_folder(tmp_path_factory.mktemp("model") / "tiny")
    team = world.team_a.id
    return world.call(lambda: world.bot.services.models.register(team, folder.path, "tiny").id)


@pytest.fixture(scope="module")
def trained_model_id(world: World, trained_model) -> int:
    """The session's tiny trained model, registered as team A's model."""
    team = world.team_a.id
    return world.call(lambda: world.bot.services.models.register(team, trained_model.out_dir, "tiny").id)


def test_upload_answers_with_the_report_and_a_preview(world: World, shapes: str, shapes_upload) -> None:
    i = shapes_upload
    assert i.callbacks[0]["type"] == 5  # deferred at once, then a follow-up
    text = i.text()
    assert "40 images" in text and "circle" in text
    assert "preview.png" in i.files()
    assert world.call(lambda: world.bot.services.datasets.get(world.team_a.id, "shapes")).image_count == 40


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"notes.txt": b"hello"}, "FieldLens reads Pascal VOC"),
        (
            {"../evil/Annotations/a.xml": b"<annotation/>", "JPEGImages/a.jpg": b"x"},
            "climbs out of the dataset folder",
        ),
    ],
)
def test_a_bad_zip_gets_a_sentence_and_stores_nothing(world: World, files: dict, message: str) -> None:
    before = world.call(lambda: len(world.bot.services.datasets.list_team(world.team_a.id)))
    i = upload(world, "bad", make_zip(files))
    assert message in i.text(), i.text()
    assert i.followups[-1]["flags"] & 64  # ephemeral
    assert world.call(lambda: len(world.bot.services.datasets.list_team(world.team_a.id))) == before


def test_upload_by_link_refuses_loopback_and_bad_schemes(world: World) -> None:
    for url, message in [
        (f"http://127.0.0.1:{world.fake.port}/attachments/1/x.zip", "private or local address"),
        ("file:///etc/passwd", "http:// or https:// link"),
    ]:
        i = world.slash(
            "dataset upload", guild=world.team_a, options={"name": (STRING, "x"), "url": (STRING, url)}
        )
        world.wait_answer(i, "done")
        assert message in i.text()


def test_upload_needs_a_file_or_a_link_and_names_the_servers_limit(world: World) -> None:
    i = world.slash("dataset upload", guild=world.team_a, options={"name": (STRING, "x")})
    assert "Give either a zip file or a link" in i.text() and "up to 10 MB" in i.text() and i.ephemeral


def test_dataset_list_info_preview_and_autocomplete(world: World, shapes: str) -> None:
    assert "**shapes**" in world.slash("dataset list", guild=world.team_a).text()
    info = world.slash("dataset info", guild=world.team_a, options={"name": (STRING, "shapes")})
    assert "Dataset shapes" in info.text() and info.ephemeral
    preview = world.slash(
        "dataset preview", guild=world.team_a, wait="done", options={"name": (STRING, "shapes")}
    )
    assert "shapes-preview.png" in preview.files()
    auto = world.slash(
        "dataset info", guild=world.team_a, options={"name": (STRING, "sha")}, autocomplete="name"
    )
    assert auto.callbacks[0]["type"] == 8
    assert auto.callbacks[0]["data"]["choices"] == [{"name": "shapes", "value": "shapes"}]


def test_delete_asks_to_confirm_and_cancel_keeps_the_dataset(world: World) -> None:
    upload(world, "scratch", make_voc_zip(images=6, seed=5))
    ask = world.slash("dataset delete", guild=world.team_a, options={"name": (STRING, "scratch")})
    message = world.fake.messages[ask.callbacks[0]["message_id"]]
    buttons = [c["custom_id"] for row in message["components"] for c in row["components"]]
    cancel = world.press(message, buttons[1], world.team_a)
    assert "nothing was changed" in cancel.text()
    assert world.call(lambda: world.bot.services.datasets.get(world.team_a.id, "scratch"))
    ask = world.slash("dataset delete", guild=world.team_a, options={"name": (STRING, "scratch")})
    message = world.fake.messages[ask.callbacks[0]["message_id"]]
    deleted = world.press(message, buttons_of(message)[0], world.team_a)
    assert deleted.callbacks[0]["type"] == 6  # answered at once; the deletion runs off the event loop
    world.wait(lambda: "Deleted dataset **scratch**" in deleted.text(), 30, "the deletion")
    names = world.call(lambda: [d.name for d in world.bot.services.datasets.list_team(world.team_a.id)])
    assert "scratch" not in names


def buttons_of(message: dict) -> list[str]:
    return [c["custom_id"] for row in message["components"] for c in row["components"]]


def test_members_need_the_team_role_and_setup_needs_admin(world: World, shapes: str) -> None:
    guild = world.team_a
    role_id = next(iter(guild.roles))
    plain = upload(world, "nope", make_voc_zip(images=4, seed=2), perms=MEMBER)
    assert "Only server administrators may do this" in plain.text() and plain.ephemeral
    refused = world.slash(
        "fieldlens setup",
        guild=guild,
        perms=MEMBER,
        options={"channel": (CHANNEL, guild.channel_id), "role": (ROLE, role_id)},
    )
    assert "Administrator permission" in refused.text()
    done = world.slash(
        "fieldlens setup",
        guild=guild,
        options={"channel": (CHANNEL, guild.channel_id), "role": (ROLE, role_id)},
        resolved={
            "channels": {guild.channel_id: {**world.fake._channel(guild), "permissions": MEMBER}},
            "roles": {
                role_id: {
                    "id": role_id,
                    "name": "builders",
                    "permissions": MEMBER,
                    "position": 1,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                    "flags": 0,
                }
            },
        },
    )
    assert "will post training news" in done.text(), done.text()
    without_role = upload(world, "nope", make_voc_zip(images=4, seed=2), perms=MEMBER)
    assert f"You need the <@&{role_id}> role" in without_role.text()
    with_role = upload(world, "members-upload", make_voc_zip(images=4, seed=2), perms=MEMBER, roles=[role_id])
    assert "Stored dataset **members-upload**" in with_role.text()
    # Everyone may view.
    assert "**shapes**" in world.slash("dataset list", guild=guild, perms=MEMBER).text()


def test_another_servers_ids_are_not_found_and_dms_are_refused(
    world: World, shapes: str, model_id: int
) -> None:
    b = world.team_b
    assert "No dataset" in world.slash("dataset info", guild=b, options={"name": (STRING, "shapes")}).text()
    assert (
        f"No model {model_id}"
        in world.slash("model info", guild=b, options={"model": (INTEGER, model_id)}).text()
    )
    assert (
        "No job 1 in this team" in world.slash("train status", guild=b, options={"job": (INTEGER, 1)}).text()
    )
    assert "No datasets yet" in world.slash("dataset list", guild=b).text()
    dm = world.slash("budget show", guild=None)
    assert "inside your team's Discord server" in dm.text() and dm.ephemeral


def test_model_info_download_as_files_and_as_signed_link(world: World, model_id: int) -> None:
    info = world.slash("model info", guild=world.team_a, options={"model": (INTEGER, model_id)})
    assert f"Model {model_id}" in info.text() and "mAP@0.5 int8 / float" in info.text()
    download = world.slash("model download", guild=world.team_a, options={"model": (INTEGER, model_id)})
    assert sorted(download.files()) == ["labels.txt", "model_int8.tflite"]
    uploaded = {f["filename"]: f["data"] for f in download.callbacks[0]["files"]}
    model_dir = Path(world.call(lambda: world.bot.services.models.get(world.team_a.id, model_id).path))
    assert uploaded["model_int8.tflite"] == (model_dir / "model_int8.tflite").read_bytes()

    world.team_a.filesize_limit = 1000  # a server with a tiny upload limit gets links instead
    try:
        linked = world.slash("model download", guild=world.team_a, options={"model": (INTEGER, model_id)})
    finally:
        world.team_a.filesize_limit = 10 * 1024 * 1024
    urls = re.findall(r"\((http://[^)]+)\)", linked.text())
    assert len(urls) == 2 and linked.files() == []
    url = urls[0].replace("127.0.0.1:0", f"127.0.0.1:{world.bot.web_port}")
    with urllib.request.urlopen(url) as response:
        assert response.read() == (model_dir / "model_int8.tflite").read_bytes()
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url.replace("sig=", "sig=0"))
    assert refused.value.code == 403


@pytest.mark.slow
def test_model_test_returns_the_annotated_photo(world: World, trained_model_id: int) -> None:
    model_id = trained_model_id
    with zipfile.ZipFile(io.BytesIO(make_voc_zip(images=2, seed=99))) as z:
        photo = z.read(next(n for n in z.namelist() if n.startswith("JPEGImages/")))
    attachment = world.fake.add_attachment("robot.jpg", photo, "image/jpeg")
    i = world.slash(
        "model test",
        guild=world.team_a,
        wait="done",
        options={"model": (INTEGER, model_id), "image": (ATTACHMENT, attachment["id"])},
        resolved={"attachments": {attachment["id"]: attachment}},
    )
    assert "detections.png" in i.files()
    assert f"Model {model_id} on robot.jpg" in i.text()
    bad = world.fake.add_attachment("notes.jpg", b"not an image", "image/jpeg")
    refused = world.slash(
        "model test",
        guild=world.team_a,
        wait="done",
        options={"model": (INTEGER, model_id), "image": (ATTACHMENT, bad["id"])},
        resolved={"attachments": {bad["id"]: bad}},
    )
    assert "not an image FieldLens can read" in refused.text()


def test_budget_show_and_grant_only_for_operators(world: World) -> None:
    shown = world.slash("budget show", guild=world.team_b)
    assert "600 training minutes left" in shown.text() and "initial" in shown.text()
    refused = world.slash("budget grant", guild=world.team_b, options={"minutes": (INTEGER, 50)})
    assert "Only FieldLens operators" in refused.text()
    granted = world.slash(
        "budget grant", guild=world.team_b, uid=OPERATOR, options={"minutes": (INTEGER, 50)}
    )
    assert "650 left" in granted.text()


def test_unexpected_errors_show_a_ref_and_log_the_traceback(
    world: World, model_id: int, caplog: pytest.LogCaptureFixture
) -> None:
    team = world.team_a.id
    folder = Path(world.call(lambda: world.bot.services.models.get(team, model_id).path))
    manifest = folder / "manifest.json"
    saved = manifest.read_bytes()
    manifest.unlink()  # a broken install: the model folder lost its manifest
    try:
        with caplog.at_level(logging.ERROR, logger="bot.cogs.errors"):
            i = world.slash("model info", guild=world.team_a, options={"model": (INTEGER, model_id)})
    finally:
        manifest.write_bytes(saved)
    ref = re.search(r"Something went wrong \(ref ([0-9a-f]{6})\)", i.text())
    assert ref, i.text()
    assert "Traceback" not in i.text() and "FileNotFoundError" not in i.text()
    assert any(ref.group(1) in r.getMessage() and r.exc_info for r in caplog.records)


def test_a_429_is_retried_and_the_command_still_answers(world: World) -> None:
    world.fake.rate_limit_once.add(("POST", "/interactions/"))
    i = world.slash("budget show", guild=world.team_a)
    assert "training minutes left" in i.text()
    assert any(r.startswith("POST /interactions/") for r in world.fake.rate_limited)


def test_a_gateway_reconnect_resumes_and_commands_keep_working(world: World) -> None:
    resumes = world.fake.resumes
    world.run(world.fake.request_reconnect())
    world.wait(lambda: world.fake.resumes > resumes, 30, "a RESUME")
    world.wait(lambda: world.fake.sockets, 10, "a new gateway connection")
    assert "training minutes left" in world.slash("budget show", guild=world.team_a).text()
