"""The bot's end-to-end training test again, with jobs run by a remote worker through the broker: a
real redis-server, `fieldlens control` on the bot's data folder, one `fieldlens worker --broker` with
a data folder of its own, and the blob store on a real S3 server (moto's, on loopback)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from storage.settings import Settings
from testkit.world import World
from tests.bot.conftest import OPERATOR, TINY_BOT_JOB
from tests.bot.test_training_e2e import test_train_from_discord_end_to_end
from tests.cluster.servers import Process, redis_server, s3_server

__all__ = ["test_train_from_discord_end_to_end"]  # the same test, with the fixtures below

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services_on_loopback(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    root = tmp_path_factory.mktemp("broker")
    with ExitStack() as stack:
        broker = stack.enter_context(redis_server(root / "redis"))
        store_env = stack.enter_context(s3_server("fieldlens-bot-test"))
        yield root, {**store_env, "FIELDLENS_BROKER_URL": broker}


@pytest.fixture(scope="module")
def world(services_on_loopback: tuple[Path, dict[str, str]]) -> Iterator[World]:
    root, env = services_on_loopback
    settings = Settings(
        home=root / "bot",
        web_port=0,
        public_url="http://127.0.0.1:0",
        admin_user_ids=[OPERATOR],
        notify_seconds=0.3,
        heartbeat_seconds=0.5,
        job_defaults=TINY_BOT_JOB,
        broker_url=env["FIELDLENS_BROKER_URL"],
        store=env["FIELDLENS_STORE"],
        s3_endpoint_url=env["FIELDLENS_S3_ENDPOINT_URL"],
    )
    w = World(settings)
    w.start()
    yield w
    w.close()
    assert w.fake.unknown == [] and w.fake.violations == []


@pytest.fixture(scope="module")
def worker(world: World, services_on_loopback: tuple[Path, dict[str, str]]) -> Iterator[None]:
    root, env = services_on_loopback
    base = {**os.environ, **env, "FIELDLENS_HEARTBEAT_SECONDS": "0.5"}
    control = Process(["control"], {**base, "FIELDLENS_HOME": str(world.settings.home)}, root / "control.log")
    remote = Process(
        ["worker", "--broker", env["FIELDLENS_BROKER_URL"]],
        {**base, "FIELDLENS_HOME": str(root / "gpu-box")},
        root / "worker.log",
    )
    yield
    remote.stop()
    control.stop()
    assert (root / "gpu-box" / "jobs" / "1" / "job.log").is_file()  # job 1 really ran over there
    assert not (root / "gpu-box" / "fieldlens.db").exists()  # and the worker never opened a database
