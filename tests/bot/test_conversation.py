"""What a student reads, clicks and does next: every dead end of the conversation, through the fake Discord.

No training here (no worker): jobs stay QUEUED unless a test moves them, so each test reads the
sentences the bot answers with, not only that it answered.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.domain import JobState
from storage.plan import suggested_steps
from storage.voc.synth import make_voc_zip
from testkit.fake_discord import MEMBER
from testkit.world import World
from tests.bot.conftest import OPERATOR, TINY_BOT_JOB
from tests.bot.test_commands import INTEGER, STRING, buttons_of

STUDENT = 111  # the fake's default user


@pytest.fixture(scope="module")
def team(world: World) -> str:
    """Team A with a role, a channel for news and two small datasets with the same labels."""
    guild = world.team_a
    role = int(next(iter(guild.roles)))
    services = world.bot.services
    world.call(lambda: services.teams.configure(guild.id, int(guild.channel_id), role, guild.name))
    for name, seed in (("shapes", 21), ("more", 22)):
        world.call(lambda n=name, s=seed: services.datasets.add(guild.id, n, make_voc_zip(images=40, seed=s)))
    return guild.id


def start_job(world: World, **options: object) -> tuple[int, dict]:
    """`/train start` and press Start as an administrator; returns the job id and its progress message."""
    opts = {"datasets": (STRING, "shapes"), "steps": (INTEGER, 40), **options}
    plan = world.slash("train start", guild=world.team_a, options=opts)
    offer = world.fake.messages[plan.callbacks[0]["message_id"]]
    started = world.press(offer, buttons_of(offer)[0], world.team_a)
    job_id = int(started.text().split(":")[0].split()[-1])  # "Job 7: QUEUED"
    return job_id, world.fake.messages[started.callbacks[0]["message_id"]]


def test_a_member_without_the_role_pressing_stop_reads_which_role_it_needs(world: World, team: str) -> None:
    job_id, progress = start_job(world)
    role = next(iter(world.team_a.roles))
    refused = world.press(progress, f"fieldlens:stop:{job_id}", world.team_a, perms=MEMBER)
    assert refused.text() == f"You need the <@&{role}> role to do this; everyone may view."
    assert refused.ephemeral
    assert world.call(lambda: world.bot.services.jobs.get(team, job_id).state) == JobState.QUEUED

    allowed = world.press(progress, f"fieldlens:stop:{job_id}", world.team_a, perms=MEMBER, roles=[role])
    assert f"Job {job_id} was canceled before it started; its minutes are back." in allowed.text()
    ended = world.press(progress, f"fieldlens:stop:{job_id}", world.team_a)
    assert f"Job {job_id} has already ended (CANCELED)" in ended.text() and ended.ephemeral


def test_the_starter_is_mentioned_when_the_job_ends_and_nobody_else(world: World, team: str) -> None:
    job_id, progress = start_job(world)
    world.press(progress, f"fieldlens:stop:{job_id}", world.team_a)

    def ended() -> list[dict]:
        return [
            m
            for m in world.fake.channel_messages
            if f"Job {job_id} " in m["content"] and "**CANCELED**" in m["content"]
        ]

    message = world.wait(ended, 20, "the CANCELED announcement")[0]
    assert message["content"].startswith(f"<@{STUDENT}> Job {job_id} ")
    assert "Canceled before its first checkpoint" in message["content"]  # the state in plain words
    assert f"`/train retry job:{job_id}`" in message["content"]  # and what to do next
    mentions = message["allowed_mentions"]
    assert mentions["users"] == [STUDENT] and mentions["parse"] == []
    queued = next(m for m in world.fake.channel_messages if f"Job {job_id} " in m["content"])
    assert "**QUEUED**: Waiting for a free trainer" in queued["content"]
    assert not queued["content"].startswith("<@") and queued["allowed_mentions"]["parse"] == []


def test_a_team_with_no_minutes_pressing_start_reads_how_to_get_more(world: World) -> None:
    guild = world.team_b
    services = world.bot.services
    world.call(lambda: services.datasets.add(guild.id, "shapes", make_voc_zip(images=20, seed=3)))
    world.call(lambda: services.jobs.create(guild.id, ["shapes"], steps=100, max_minutes=600))  # all of it
    plan = world.slash("train start", guild=guild, options={"datasets": (STRING, "shapes")})
    assert "reserves 60 min of 0 left" in plan.text()
    assert "Not enough minutes: Start will be refused: ask the FieldLens operators" in plan.text()
    offer = world.fake.messages[plan.callbacks[0]["message_id"]]
    refused = world.press(offer, buttons_of(offer)[0], guild)
    assert refused.text() == (
        "The team has 0 training minutes left, so this job cannot start: ask the FieldLens operators "
        "for more minutes (`/budget show` says who they are)."
    )
    assert refused.ephemeral
    shown = world.slash("budget show", guild=guild)
    assert f"More minutes: ask the FieldLens operators (<@{OPERATOR}>)." in shown.text()

    # The buttons still work: once an operator grants minutes, Start queues the job.
    world.slash("budget grant", guild=guild, uid=OPERATOR, options={"minutes": (INTEGER, 60)})
    started = world.press(offer, buttons_of(offer)[0], guild)
    assert "QUEUED" in started.text() and "Waiting for a free trainer" in started.text()


def test_an_unexpected_error_in_a_button_gives_a_ref_and_names_the_operators(
    world: World, team: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id, progress = start_job(world)

    def broken(*args: object) -> None:
        raise RuntimeError("database is on fire")

    monkeypatch.setattr(world.bot.services.jobs, "request_stop", broken)
    pressed = world.press(progress, f"fieldlens:stop:{job_id}", world.team_a)
    assert "Something went wrong (ref " in pressed.text()
    assert pressed.text().endswith(f"Tell the FieldLens operators (<@{OPERATOR}>) this ref.")
    assert "fire" not in pressed.text() and pressed.ephemeral
    monkeypatch.undo()
    world.call(lambda: world.bot.services.jobs.request_stop(team, job_id))  # keep the queue short


def test_start_takes_a_batch_size_and_suggests_steps_from_the_datasets_size(world: World, team: str) -> None:
    train_images = world.call(
        lambda: world.bot.services.jobs.plan(team, ["shapes"], steps=100, batch_size=8)[0].train_images
    )
    every = TINY_BOT_JOB["checkpoint_every"]  # the test bot checkpoints every 20 steps
    suggested = suggested_steps(train_images, 8, every)  # ~100 epochs in whole checkpoints
    plan = world.slash(
        "train start",
        guild=world.team_a,
        options={"datasets": (STRING, "shapes"), "batch_size": (INTEGER, 8)},
    )
    text = plan.text()
    assert "Batch size: 8 images per step" in text
    assert f"{suggested} steps" in text and "An epoch is one pass over every training image" in text
    assert "ssd_mobilenet_v2_320: fastest on a robot" in text

    given = world.slash(
        "train start", guild=world.team_a, options={"datasets": (STRING, "shapes"), "steps": (INTEGER, 40)}
    )
    assert f"is `steps:{suggested_steps(train_images, 16, every)}`" in given.text()


def test_a_failed_job_retries_from_its_checkpoint_with_a_smaller_batch(world: World, team: str) -> None:
    services = world.bot.services
    job_id, _ = start_job(world)
    job = world.call(lambda: services.jobs.get(team, job_id))
    checkpoints = Path(job.checkpoint_dir) / "checkpoints"  # what a trainer leaves at step 20
    (checkpoints / "step-0000020").mkdir(parents=True)
    (checkpoints / "step-0000020" / "model.weights.h5").write_bytes(b"weights")
    (checkpoints / "latest.json").write_text(json.dumps({"path": "step-0000020", "step": 20}))
    oom = "Training ran out of memory at batch size 16. Retry the job with a smaller batch size (8, say)."
    world.call(lambda: services.jobs.finish(job_id, JobState.FAILED, {"reason": oom}, error=oom))

    status = world.slash("train status", guild=world.team_a, options={"job": (INTEGER, job_id)})
    assert f"`/train retry job:{job_id}`" in status.text() and "Training failed" in status.text()
    retried = world.slash(
        "train retry",
        guild=world.team_a,
        wait="done",
        options={"job": (INTEGER, job_id), "batch_size": (INTEGER, 8)},
    )
    new = world.call(lambda: services.jobs.list_team(team, limit=1)[0])
    assert f"Job {new.id} retries job {job_id} from its checkpoint at step 20" in retried.text()
    assert new.state == JobState.QUEUED and new.batch_size == 8 and new.steps == job.steps
    assert new.description == f"retry of job {job_id}"
    copied = Path(new.checkpoint_dir) / "checkpoints"
    assert (copied / "step-0000020" / "model.weights.h5").read_bytes() == b"weights"
    assert json.loads((copied / "latest.json").read_text())["step"] == 20
    assert f"fieldlens:stop:{new.id}" in buttons_of(world.fake.messages[retried.followups[0]["id"]])


def test_retry_refuses_a_job_that_is_still_queued_and_says_why(world: World, team: str) -> None:
    job_id, _ = start_job(world)
    refused = world.slash("train retry", guild=world.team_a, options={"job": (INTEGER, job_id)})
    assert refused.text() == f"Job {job_id} is still QUEUED; retry it once it has ended, or stop it first."
    world.call(lambda: world.bot.services.jobs.request_stop(team, job_id))


def test_dataset_autocomplete_completes_the_last_name_of_a_list(world: World, team: str) -> None:
    auto = world.slash(
        "train start",
        guild=world.team_a,
        options={"datasets": (STRING, "shapes, mo")},
        autocomplete="datasets",
    )
    assert auto.callbacks[0]["data"]["choices"] == [{"name": "shapes, more", "value": "shapes, more"}]
    first = world.slash(
        "train start", guild=world.team_a, options={"datasets": (STRING, "")}, autocomplete="datasets"
    )
    assert {c["value"] for c in first.callbacks[0]["data"]["choices"]} >= {"shapes", "more"}


def test_job_and_model_ids_autocomplete_by_name(world: World, team: str) -> None:
    job_id, _ = start_job(world, description=(STRING, "blue cones"))
    auto = world.slash(
        "train status", guild=world.team_a, options={"job": (STRING, "cones")}, autocomplete="job"
    )
    assert auto.callbacks[0]["data"]["choices"] == [
        {"name": f"job {job_id} · QUEUED · blue cones", "value": job_id}
    ]


def test_help_fits_one_screen_and_is_ordered_by_task(world: World) -> None:
    shown = world.slash("help", guild=world.team_a)
    text = shown.text()
    assert shown.ephemeral and len(text) < 1500 and text.count("\n") < 20
    tasks = ["Set up", "Get data in", "Train", "Test", "Put it on the robot"]
    assert [text.index(t) for t in tasks] == sorted(text.index(t) for t in tasks)
    for command in ("/fieldlens setup", "/dataset upload", "/train start", "/model test", "/model download"):
        assert command in text


def test_joining_a_server_says_what_to_do_first(world: World) -> None:
    guild = world.run(world.fake.join_guild("Team C"))
    greeting = world.wait(
        lambda: [m for m in world.fake.channel_messages if m["channel_id"] == guild.channel_id],
        20,
        "a greeting",
    )[0]
    assert "/fieldlens setup channel: role:" in greeting["content"] and "/help" in greeting["content"]


def test_combine_runs_off_the_event_loop_and_answers_with_the_report(world: World, team: str) -> None:
    combined = world.slash(
        "dataset combine",
        guild=world.team_a,
        wait="done",
        options={"name": (STRING, "both"), "datasets": (STRING, "shapes, more")},
    )
    assert combined.callbacks[0]["type"] == 5  # deferred at once
    assert "Combined shapes, more into **both**" in combined.text() and "80 images" in combined.text()


def test_a_job_refused_by_a_full_queue_is_queued_again_with_retry(world: World, team: str) -> None:
    services = world.bot.services
    made = []
    while not made or made[-1].state != JobState.TRY_AGAIN_LATER:  # fill the team's queue
        made.append(world.call(lambda: services.jobs.create(team, ["shapes"], steps=100, max_minutes=1)))
    later = made[-1]
    status = world.slash("train status", guild=world.team_a, options={"job": (INTEGER, later.id)})
    assert "Not started: the queue was full" in status.text()
    assert f"`/train retry job:{later.id}`" in status.text()
    for job in made[:-1]:
        world.call(lambda j=job: services.jobs.request_stop(team, j.id))  # room in the queue again
    retried = world.slash(
        "train retry", guild=world.team_a, wait="done", options={"job": (INTEGER, later.id)}
    )
    new = world.call(lambda: services.jobs.list_team(team, limit=1)[0])
    assert f"Job {new.id} retries job {later.id} from the start" in retried.text()
    assert new.state == JobState.QUEUED
    world.call(lambda: services.jobs.request_stop(team, new.id))
