"""The bot machine's side of remote work, without training: claims, fencing, heartbeats, dispatch and
stop flags, against a real redis-server and a real SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cluster.app import STOP_KEY, TRAIN_QUEUE, make_app, redis_client
from cluster.control import Control
from cluster.dispatch import Dispatcher
from storage.domain import JobState
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from testkit.tiny import TINY_JOB
from tests.cluster.servers import redis_server


@pytest.fixture
def control(tmp_path: Path) -> Iterator[Control]:
    with redis_server(tmp_path / "redis") as url:
        settings = Settings(home=tmp_path / "bot", broker_url=url, store=(tmp_path / "store").as_uri())
        c = Control(settings)
        c.services.datasets.add("local", "shapes", make_voc_zip(images=12, seed=3))
        yield c
        c.services.close()


def queue(c: Control) -> int:
    return c.services.jobs.create(
        "local", ["shapes"], steps=20, batch_size=4, max_minutes=5, config=TINY_JOB
    ).id


def test_a_job_goes_to_the_first_worker_that_claims_it_only(control: Control) -> None:
    job_id = queue(control)
    first = control.claim(job_id, "w1")
    assert first is not None and first["id"] == job_id and first["attempts"] == 1
    assert control.claim(job_id, "w2") is None
    job = control.services.jobs.get("local", job_id)
    assert job.state == JobState.PREPARING and job.worker_id == "w1"


def test_reports_of_a_worker_that_lost_its_job_are_dropped(control: Control) -> None:
    jobs = control.services.jobs
    job_id = queue(control)
    control.claim(job_id, "w1")
    control.report(job_id, "w1", "state", {"to": "RUNNING", "device": "CPU"}, {})
    control.report(job_id, "w1", "progress", {"step": 5}, {"steps_completed": 5})
    assert jobs.get("local", job_id).state == JobState.RUNNING
    assert jobs.get("local", job_id).steps_completed == 5

    # The reaper hands the job on (w1 was frozen); w2 claims it.
    job = jobs.get("local", job_id)
    control.services.recovery.recover(job_id, "test: its worker went silent")
    assert control.claim(job_id, "w2") is not None
    before = jobs.last_event_id(job_id)
    control.report(job_id, "w1", "progress", {"step": 9}, {"steps_completed": 9})
    control.finish(job_id, "w1", "FAILED", {"reason": "late"}, None, None, {"error": "late"})
    assert jobs.last_event_id(job_id) == before  # nothing written
    after = jobs.get("local", job_id)
    assert (
        after.state == JobState.PREPARING and after.worker_id == "w2" and after.attempts == job.attempts + 1
    )
    assert control.dropped == 2

    # The frozen worker's heartbeat is answered with the job it no longer owns.
    assert control.heartbeat("w1", [job_id], {}) == [job_id]
    assert control.heartbeat("w2", [job_id], {}) == []
    control.finish(job_id, "w2", "FAILED", {"reason": "test"}, None, None, {"error": "test"})
    assert jobs.get("local", job_id).state == JobState.FAILED
    assert control.services.budget.balance("local") == control.settings.team_minutes  # refunded in full


def test_idle_workers_show_in_the_worker_list(control: Control) -> None:
    from cluster.workers import list_workers

    control.heartbeat("fieldlens-gpu0-1@box", [], {"host": "box", "gpu": "0"})
    (listed,) = list_workers(control.settings, {"fieldlens-gpu0-1@box": 4})
    assert listed["name"] == "fieldlens-gpu0-1@box" and listed["gpu"] == "0" and listed["job"] == 4
    assert listed["alive"] and not listed["draining"]


def test_the_dispatcher_sends_each_queued_job_once_per_time_in_the_queue(control: Control) -> None:
    assert control.settings.broker_url
    r = redis_client(control.settings.broker_url)
    dispatcher = Dispatcher(control.services, make_app(control.settings.broker_url), control.store, r)
    job_id = queue(control)
    assert dispatcher.tick() == [job_id]
    assert dispatcher.tick() == []
    assert r.llen(TRAIN_QUEUE) == 1
    message = json.loads(r.lindex(TRAIN_QUEUE, 0))  # type: ignore[arg-type]
    assert message["headers"]["task"] == "fieldlens.train"
    # The images went to the blob store before the task.
    assert len(control.store.keys("images/")) == len({i.sha256 for i in control.services.datasets.images(1)})

    # Claimed, then requeued by the reaper: a new time in the queue, a new task.
    control.claim(job_id, "w1")
    control.services.recovery.recover(job_id, "test")
    assert dispatcher.tick() == [job_id]
    assert r.llen(TRAIN_QUEUE) == 2

    # A stop asked for in SQLite becomes the flag the worker polls.
    control.claim(job_id, "w2")
    assert not r.exists(STOP_KEY.format(job_id=job_id))
    control.services.jobs.request_stop("local", job_id)
    dispatcher.tick()
    assert r.exists(STOP_KEY.format(job_id=job_id))


def test_a_worker_shutting_down_gives_its_job_back_without_spending_an_attempt(control: Control) -> None:
    jobs = control.services.jobs
    job_id = queue(control)
    control.claim(job_id, "w1")
    control.report(job_id, "w1", "state", {"to": "RUNNING", "device": "CPU"}, {})
    assert control.release(job_id, "w1") is True
    job = jobs.get("local", job_id)
    assert job.state == JobState.QUEUED and job.worker_id is None and job.attempts == 0
    assert "Requeued: its worker shut down" in jobs.events(job_id)[-1].data["reason"]

    # Claimed again: the same attempt number as before. A late hand-back from w1 is dropped.
    assert control.claim(job_id, "w2")["attempts"] == 1  # type: ignore[index]
    assert control.release(job_id, "w1") is False
    assert jobs.get("local", job_id).worker_id == "w2" and control.dropped == 1


def test_a_growing_log_is_copied_to_the_bot_machine_from_its_owner_only(control: Control) -> None:
    from storage.job_folder import JobFolder

    job_id = queue(control)
    control.claim(job_id, "w1")
    job = control.services.jobs.get("local", job_id)
    log = JobFolder(job.checkpoint_dir or control.settings.home / "jobs" / str(job_id)).log
    control.store.put(f"jobs/{job_id}/job.log", b"step 10 loss 1.5\n")
    control.log_updated(job_id, "w1")
    assert log.read_text() == "step 10 loss 1.5\n"
    control.store.put(f"jobs/{job_id}/job.log", b"from a worker that lost the job\n")
    control.log_updated(job_id, "w9")
    assert log.read_text() == "step 10 loss 1.5\n"


def test_a_remote_job_shares_its_log_between_checkpoints_only_when_it_grew(
    control: Control, tmp_path: Path
) -> None:
    from cluster.app import CONTROL_QUEUE, LOG
    from cluster.remote import RemoteLink
    from storage.job_folder import JobFolder

    assert control.settings.broker_url
    r = redis_client(control.settings.broker_url)
    job_id = queue(control)
    claimed = control.claim(job_id, "w1")
    assert claimed is not None
    app = make_app(control.settings.broker_url)
    link = RemoteLink(app, control.store, control.settings.broker_url, tmp_path / "w1", {}, claimed, "w1", "")
    log = JobFolder(link.workdir).log
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("step 10 loss 1.5\n")

    def told() -> list[str]:
        return [json.loads(m)["headers"]["task"] for m in r.lrange(CONTROL_QUEUE, 0, -1)]

    link.share_log()
    assert told() == [LOG]
    assert control.store.get(f"jobs/{job_id}/job.log") == b"step 10 loss 1.5\n"
    link.share_log()  # nothing new: nothing sent
    assert told() == [LOG]
    log.write_text("step 10 loss 1.5\nstep 20 loss 1.1\n")
    link.share_log()
    assert told() == [LOG, LOG]
    control.log_updated(job_id, "w1")
    bot_job = control.services.jobs.get("local", job_id)
    bot_log = JobFolder(bot_job.checkpoint_dir or control.settings.home / "jobs" / str(job_id)).log
    assert bot_log.read_text().endswith("step 20 loss 1.1\n")
