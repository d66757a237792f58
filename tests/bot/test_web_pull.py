"""The bot's model route with the real aiohttp server on 127.0.0.1 and the real `fieldlens-edge pull`:
a good model is pulled, a tampered one refused, tokens and teams kept apart. The model folder is
written without training (the route serves files and checks hashes; it never runs the model)."""

from __future__ import annotations

import asyncio
import shutil
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

import pytest
from aiohttp import web

from bot.web import make_app
from edge.pull import PullError, pull
from storage.db import open_db
from storage.models import ModelStore
from tests.model_folders import write_model_folder


class LocalServer:
    """Runs an aiohttp app built by `factory` on its own thread and loop (SQLite connections are
    per thread, so the app opens its own)."""

    def __init__(self, factory: Callable[[], web.Application]) -> None:
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def start() -> None:
            self.runner = web.AppRunner(factory())
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
            ready.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()), daemon=True
        )
        self.thread.start()
        assert ready.wait(10)

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self.runner.cleanup(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


@pytest.fixture
def model_dir(tmp_path):
    return write_model_folder(tmp_path / "delivered").path


@pytest.fixture
def server(services):
    db_path = services.settings.db_path
    s = LocalServer(lambda: make_app(ModelStore(open_db(db_path))))
    yield s
    s.close()


def test_robot_pulls_the_latest_model_of_its_team(services, model_dir, server, tmp_path) -> None:
    models = services.models
    model = models.register("team-a", model_dir, "shapes v1")
    token = models.create_edge_token("team-a")
    version = pull(server.url, token, tmp_path / "robot")
    current = tmp_path / "robot" / "current"
    assert current.resolve() == version.resolve()
    assert (current / "model_int8.tflite").read_bytes() == (model_dir / "model_int8.tflite").read_bytes()
    assert (current / "labels.txt").read_text().splitlines() == ["circle", "square", "triangle"]
    assert f"model-{model.id}-" in version.name


def test_tampered_model_on_the_server_is_refused(services, model_dir, server, tmp_path) -> None:
    models = services.models
    first_token = models.create_edge_token("team-b")
    models.register("team-b", model_dir, "good")
    good = pull(server.url, first_token, tmp_path / "robot")
    bad_dir = tmp_path / "bad-model"
    shutil.copytree(model_dir, bad_dir)
    data = bytearray((bad_dir / "model_int8.tflite").read_bytes())
    data[len(data) // 2] ^= 0xFF  # flipped on disk after delivery: the manifest's sha256 no longer matches
    (bad_dir / "model_int8.tflite").write_bytes(bytes(data))
    models.register("team-b", bad_dir, "tampered")
    with pytest.raises(PullError, match=r"sha256 mismatch for model_int8\.tflite"):
        pull(server.url, first_token, tmp_path / "robot")
    assert (tmp_path / "robot" / "current").resolve() == good.resolve()


def test_tokens_and_teams_are_kept_apart(services, model_dir, server, tmp_path) -> None:
    models = services.models
    theirs = models.register("team-c", model_dir, "theirs")
    mine = models.create_edge_token("team-d")
    with pytest.raises(PullError, match="no delivered model"):
        pull(server.url, mine, tmp_path / "robot")
    request = urllib.request.Request(
        f"{server.url}/api/v1/models/{theirs.id}/files/model_int8.tflite",
        headers={"Authorization": f"Bearer {mine}"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(request, timeout=5)
    assert err.value.code == 404
    with pytest.raises(PullError, match="refused the token"):
        pull(server.url, "not-a-token", tmp_path / "robot")
    escape = urllib.request.Request(
        f"{server.url}/api/v1/models/{theirs.id}/files/manifest.json",
        headers={"Authorization": f"Bearer {mine}"},
    )
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(escape, timeout=5)
