"""Discord messages link to the team pages: `/fieldlens dashboard`, lists, the embeds of a dataset, a
job and a model, the `/train stop` reply and the delete confirmations, through the real bot and its
web server on 127.0.0.1."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from storage.voc.synth import make_voc_zip
from testkit.world import World
from tests.model_folders import write_model_folder

INTEGER, STRING = 4, 3


def fetch(world: World, url: str) -> tuple[int, str]:
    url = url.replace("127.0.0.1:0", f"127.0.0.1:{world.bot.web_port}")
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def links(text: str) -> list[str]:
    return re.findall(r"<(http://[^>]+)>", text)


def embed_urls(interaction) -> list[str]:
    return [e["url"] for m in interaction.messages() for e in m.get("embeds") or [] if e.get("url")]


def test_dashboard_gives_a_fresh_link_to_the_teams_pages(world: World) -> None:
    team = world.team_a.id
    world.call(lambda: world.bot.services.datasets.add(team, "linked", make_voc_zip(images=8, seed=4)))
    answer = world.slash("fieldlens dashboard", guild=world.team_a)
    assert answer.ephemeral and "7 days" in answer.text()
    (url,) = links(answer.text())
    status, page = fetch(world, url)
    assert status == 200 and "linked" in page and "/datasets/" in page
    other = links(world.slash("fieldlens dashboard", guild=world.team_b).text())[0]
    assert "linked" not in fetch(world, other)[1]  # team B's pages show team B's objects only
    assert fetch(world, url.replace("sig=", "sig=1"))[0] == 403


def test_lists_and_embeds_link_to_each_ones_page(world: World, tmp_path) -> None:
    team = world.team_a.id
    world.call(lambda: world.bot.services.datasets.add(team, "embedded", make_voc_zip(images=8, seed=6)))
    listed = world.slash("dataset list", guild=world.team_a)
    assert "**embedded**" in listed.text() and "/dashboard?" in links(listed.text())[-1]
    info = world.slash("dataset info", guild=world.team_a, options={"name": (STRING, "embedded")})
    (dataset_page,) = embed_urls(info)
    status, page = fetch(world, dataset_page)
    assert status == 200 and "Dataset embedded" in page
    folder = write_model_folder(tmp_path / "model")
    model = world.call(lambda: world.bot.services.models.register(team, folder.path, "linked model"))
    shown = world.slash("model info", guild=world.team_a, options={"model": (INTEGER, model.id)})
    (model_page,) = embed_urls(shown)
    assert f"/models/{model.id}?" in model_page and fetch(world, model_page)[0] == 200
    download = world.slash("model download", guild=world.team_a, options={"model": (INTEGER, model.id)})
    assert f"/models/{model.id}?" in links(download.text())[0]


def test_stop_reply_links_to_the_jobs_page(world: World) -> None:
    team = world.team_a.id
    job = world.call(
        lambda: (
            world.bot.services.datasets.add(team, "to stop", make_voc_zip(images=8, seed=8)),
            world.bot.services.jobs.create(team, ["to stop"], steps=10, batch_size=4, max_minutes=5),
        )[1]
    )
    stopped = world.slash("train stop", guild=world.team_a, options={"job": (INTEGER, job.id)})
    assert f"Job {job.id} was canceled before it started" in stopped.text()
    (url,) = links(stopped.text())
    status, page = fetch(world, url)
    assert status == 200 and f"Job {job.id}" in page and "CANCELED" in page


def test_delete_confirmations_link_to_the_dataset_and_then_to_the_dashboard(world: World) -> None:
    from tests.bot.test_commands import buttons_of

    team = world.team_a.id
    busy = world.call(lambda: world.bot.services.datasets.add(team, "busy", make_voc_zip(images=8, seed=9)))
    job = world.call(
        lambda: world.bot.services.jobs.create(team, ["busy"], steps=10, batch_size=4, max_minutes=5)
    )

    def delete(name: str) -> tuple[str, str]:
        ask = world.slash("dataset delete", guild=world.team_a, options={"name": (STRING, name)})
        message = world.fake.messages[ask.callbacks[0]["message_id"]]
        answer = world.press(message, buttons_of(message)[0], world.team_a)
        world.wait(lambda: answer.edits, 30, "the answer to Delete")
        return ask.text(), answer.text()

    asked, refused = delete("busy")  # a queued job uses it
    (page,) = links(asked)
    assert f"/datasets/{busy.dataset.id}?" in page and "Dataset busy" in fetch(world, page)[1]
    assert f"job {job.id}" in refused.lower() and links(refused) == [page]
    world.slash("train stop", guild=world.team_a, options={"job": (INTEGER, job.id)})
    _, deleted = delete("busy")
    assert "Deleted dataset **busy**" in deleted
    (dashboard,) = links(deleted)
    status, html = fetch(world, dashboard)
    assert "/dashboard?" in dashboard and status == 200 and "busy" not in html.split("<main>")[1]
