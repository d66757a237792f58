"""Training from Discord with a real worker: plan, Start, Stop button, live progress, a bot restart,
an expired interaction token, and the results posted to the team channel."""

from __future__ import annotations

import asyncio
import math
import re
import threading
from collections.abc import Iterator

import pytest

from storage.domain import JobState
from storage.voc.synth import make_voc_zip
from testkit.world import World
from tests.bot.test_commands import INTEGER, STRING, buttons_of, upload

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def worker(world: World) -> Iterator[None]:
    from trainer.worker import Worker

    w = Worker(world.settings, worker_id="bot-tests", poll_seconds=0.3)
    thread = threading.Thread(target=w.run, daemon=True)
    thread.start()
    yield
    w.stop()
    thread.join(60)


def announcements(world: World, job_id: int) -> list[str]:
    pattern = re.compile(rf"Job {job_id}\b.* is now \*\*([A-Z_]+)\*\*")
    return [m.group(1) for msg in world.fake.channel_messages if (m := pattern.search(msg["content"]))]


def job_state(world: World, team: str, job_id: int) -> JobState:
    return world.call(lambda: world.bot.services.jobs.get(team, job_id).state)


def test_train_from_discord_end_to_end(world: World, worker: None) -> None:
    team = world.team_a
    upload(world, "shapes", make_voc_zip(images=40, seed=21))

    plan = world.slash(
        "train start", guild=team, options={"datasets": (STRING, "shapes"), "steps": (INTEGER, 40)}
    )
    text = plan.text()
    assert "Start training?" in text and "Batch size: 16" in text and "Epochs" in text
    assert "reserves 60 min of 600 left" in text
    message = world.fake.messages[plan.callbacks[0]["message_id"]]
    started = world.press(message, buttons_of(message)[0], team)
    assert started.callbacks[0]["type"] == 7  # the plan message becomes the progress message
    assert "Job 1: QUEUED" in started.text()
    progress_id = started.callbacks[0]["message_id"]
    assert "fieldlens:stop:1" in buttons_of(world.fake.messages[progress_id])

    # A second job waits behind the first; its Stop button cancels it at once.
    plan2 = world.slash(
        "train start", guild=team, options={"datasets": (STRING, "shapes"), "steps": (INTEGER, 40)}
    )
    message2 = world.fake.messages[plan2.callbacks[0]["message_id"]]
    started2 = world.press(message2, buttons_of(message2)[0], team)
    assert "Job 2: QUEUED" in started2.text()
    stop = world.press(world.fake.messages[started2.callbacks[0]["message_id"]], "fieldlens:stop:2", team)
    assert "canceled before it started" in stop.text() and stop.ephemeral
    assert job_state(world, team.id, 2) == JobState.CANCELED

    world.wait(lambda: "RUNNING" in announcements(world, 1), 120, "job 1 to be announced RUNNING")
    status = world.slash("train status", guild=team, options={"job": (INTEGER, 1)})
    assert "Job 1: " in status.text() and status.ephemeral

    # Restart the bot mid-run, and let the interaction token die meanwhile (as after 15 minutes).
    world.fake.expired_tokens.add(started.token)
    world.run(world.stop_bot())
    world.run(world.start_bot())

    world.wait(lambda: "SUCCEEDED" in announcements(world, 1), 240, "job 1 to be announced SUCCEEDED")
    assert announcements(world, 1) == ["QUEUED", "PREPARING", "RUNNING", "SUCCEEDED"]  # each once, in order
    assert announcements(world, 2) == ["QUEUED", "CANCELED"]
    results = next(
        m for m in world.fake.channel_messages if "Job 1 " in m["content"] and "SUCCEEDED" in m["content"]
    )
    assert {"model_int8.tflite", "labels.txt", "curves.png", "predictions.png"} <= set(results["files"])
    assert any(e.get("title", "").startswith("Model ") for e in results["embeds"])
    # With the token expired the progress message was edited through the channel, up to the end.
    world.wait(
        lambda: any(
            mid == progress_id and "SUCCEEDED" in (body.get("embeds") or [{}])[0].get("title", "")
            for mid, body in world.fake.channel_edits
        ),
        30,
        "the progress message to show SUCCEEDED",
    )
    assert buttons_of(world.fake.messages[progress_id]) == []  # no Stop button on an ended job

    # Nothing is announced twice after the restart.
    count = len(world.fake.channel_messages)
    world.run(world.stop_bot())
    world.run(world.start_bot())
    world.run(asyncio.sleep(1.5))  # several notifier ticks
    assert len(world.fake.channel_messages) == count

    listed = world.slash("train list", guild=team)
    assert "job 1 **SUCCEEDED**" in listed.text() and "job 2 **CANCELED**" in listed.text()
    budget = world.slash("budget show", guild=team)
    job = world.call(lambda: world.bot.services.jobs.get(team.id, 1))
    assert f"{600 - math.ceil(job.training_seconds / 60)} training minutes left" in budget.text()

    model_id = job.model_id
    more = world.slash(
        "train continue", guild=team, options={"model": (INTEGER, model_id), "steps": (INTEGER, 20)}
    )
    assert "Start training?" in more.text() and "shapes" in more.text()
    offer = world.fake.messages[more.callbacks[0]["message_id"]]
    assert "nothing was changed" in world.press(offer, buttons_of(offer)[1], team).text()
