"""Bot fixtures: the real bot logged in to the fake Discord (testkit/world.py), once per module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.settings import Settings
from testkit.tiny import TINY_JOB
from testkit.world import World

__all__ = ["OPERATOR", "TINY_BOT_JOB"]

OPERATOR = 999
TINY_BOT_JOB = {**TINY_JOB, "batch_size": 16}  # FIELDLENS_JOB_DEFAULTS of the test bot


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    home: Path = tmp_path_factory.mktemp("bot") / "home"
    settings = Settings(
        home=home,
        web_port=0,
        public_url="http://127.0.0.1:0",
        allow_private_urls=False,
        admin_user_ids=[OPERATOR],
        notify_seconds=0.3,
        heartbeat_seconds=0.5,
        job_defaults=TINY_BOT_JOB,
    )
    w = World(settings)
    w.start()
    yield w
    w.close()
    assert w.fake.unknown == [], f"the bot called routes the fake does not know: {w.fake.unknown}"
    assert w.fake.violations == [], w.fake.violations
