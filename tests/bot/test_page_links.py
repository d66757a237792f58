"""Discord messages link to the team pages: `/fieldlens dashboard`, lists, and the embeds of a
dataset, a job and a model, through the real bot and its web server on 127.0.0.1."""

from __future__ import annotations

import re
import urllib.error
import urllib.request

from storage.voc.synth import make_voc_zip
from tests.bot.world import World
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
