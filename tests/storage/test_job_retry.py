"""Retrying ended jobs on real SQLite and real files: resume from a copied checkpoint, or queue again."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.domain import Job, JobState
from storage.job_retry import NotRetryable, retry_job
from storage.plan import suggested_steps
from storage.services import Services


@pytest.fixture
def s(services: Services, synth_zip: bytes) -> Services:
    services.datasets.add("local", "shapes", synth_zip)
    return services


def leave_checkpoint(job: Job, step: int) -> Path:
    """What a trainer leaves behind: a step folder and latest.json pointing at it."""
    folder = Path(job.checkpoint_dir or "") / "checkpoints"
    (folder / f"step-{step:07d}").mkdir(parents=True)
    (folder / f"step-{step:07d}" / "model.weights.h5").write_bytes(b"weights")
    (folder / "latest.json").write_text(json.dumps({"path": f"step-{step:07d}", "step": step}))
    return folder


@pytest.mark.parametrize("ended", [JobState.FAILED, JobState.STOPPED])
def test_a_failed_or_stopped_job_resumes_from_a_copy_of_its_checkpoint(s: Services, ended: JobState) -> None:
    old = s.jobs.create("local", ["shapes"], steps=300, batch_size=16, max_minutes=20, description="cones")
    assert s.jobs.claim("worker-1").id == old.id  # a worker took it, trained to step 200...
    s.jobs.transition(old.id, JobState.RUNNING)
    leave_checkpoint(old, 200)
    if ended == JobState.STOPPED:
        s.jobs.request_stop("local", old.id)
    s.jobs.finish(old.id, ended, {}, steps_completed=200)  # ...and ran out of memory, or was stopped

    new = retry_job(s.jobs, "local", old.id, batch_size=8)
    assert new.state == JobState.QUEUED and new.id != old.id
    assert (new.steps, new.batch_size, new.max_minutes) == (300, 8, 20)
    assert new.description == f"retry of job {old.id}: cones"
    assert new.config["retry_of"] == old.id and new.config["resume_step"] == 200
    copied = Path(new.checkpoint_dir or "") / "checkpoints"
    assert json.loads((copied / "latest.json").read_text())["step"] == 200
    assert (copied / "step-0000200" / "model.weights.h5").read_bytes() == b"weights"
    assert s.jobs.get("local", old.id).state == ended  # the old job stays as it ended
    assert not list(s.jobs.jobs_dir.glob(".retry-*"))  # no staging folder left behind


def test_a_job_without_checkpoint_starts_again_from_the_start(s: Services) -> None:
    old = s.jobs.create("local", ["shapes"], steps=100, batch_size=16, max_minutes=10)
    s.jobs.request_stop("local", old.id)  # queued: CANCELED at once
    new = retry_job(s.jobs, "local", old.id)
    assert new.state == JobState.QUEUED and "resume_step" not in new.config
    assert not (Path(new.checkpoint_dir or "") / "checkpoints").exists()


def test_try_again_later_is_queued_again_once_there_is_room(s: Services) -> None:
    queued = [s.jobs.create("local", ["shapes"], steps=100, max_minutes=5) for _ in range(3)]
    later = s.jobs.create("local", ["shapes"], steps=100, max_minutes=5)
    assert later.state == JobState.TRY_AGAIN_LATER
    still_full = retry_job(s.jobs, "local", later.id)
    assert still_full.state == JobState.TRY_AGAIN_LATER  # the queue is still full: nothing reserved
    s.jobs.request_stop("local", queued[0].id)
    again = retry_job(s.jobs, "local", later.id)
    assert again.state == JobState.QUEUED


@pytest.mark.parametrize(
    ("state", "message"),
    [
        (JobState.QUEUED, "is still QUEUED; retry it once it has ended, or stop it first"),
        (JobState.SUCCEEDED, "finished every step; there is nothing to retry"),
    ],
)
def test_a_job_that_has_not_ended_or_succeeded_is_not_retried(
    s: Services, state: JobState, message: str
) -> None:
    job = s.jobs.create("local", ["shapes"], steps=100, max_minutes=5)
    s.db.execute("UPDATE jobs SET state = ? WHERE id = ?", [str(state), job.id])
    with pytest.raises(NotRetryable, match=message):
        retry_job(s.jobs, "local", job.id)


@pytest.mark.parametrize(
    ("train_images", "batch", "steps"),
    [(160, 32, 500), (19, 16, 100), (1000, 32, 3100), (3, 1, 300)],
)
def test_suggested_steps_are_about_100_epochs_in_whole_checkpoints(
    train_images: int, batch: int, steps: int
) -> None:
    assert suggested_steps(train_images, batch) == steps
