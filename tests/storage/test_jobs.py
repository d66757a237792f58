"""The job queue and the minutes ledger on real SQLite; no training (tests/trainer/test_worker.py trains)."""

from __future__ import annotations

import json
import multiprocessing
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.budget import BudgetExhausted
from storage.domain import JobState
from storage.errors import DatasetLabelsDiffer, NotFound, OutOfRange
from storage.jobs import IllegalTransition, JobEnded
from storage.maintenance import prune_checkpoints, start_scheduler
from storage.services import Services, open_services
from storage.settings import Settings
from storage.voc.synth import make_voc_zip
from tests.model_folders import write_model_folder
from tests.vocdata import good_files, make_zip, voc_xml


@pytest.fixture
def jobs_services(services: Services, synth_zip: bytes) -> Services:
    services.datasets.add("local", "shapes", synth_zip)
    return services


def ledger_sum(services: Services, team: str = "local") -> float:
    return sum(e.minutes for e in services.budget.entries(team))


def test_start_reserves_max_minutes_and_shows_the_plan(jobs_services: Services) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], steps=250, batch_size=32, max_minutes=30)
    assert job.state == JobState.QUEUED
    plan = job.config["plan"]
    # 24 images, 19 in training: batch 32 is halved to 16 (ftc-ml's rule).
    assert plan["batch_size"] == 16 and job.batch_size == 16
    assert plan["steps_per_epoch"] == pytest.approx(19 / 16, abs=0.01)
    assert plan["epochs"] == pytest.approx(250 * 16 / 19, abs=0.01)
    assert plan["estimated_seconds"] > 0
    assert any("not a multiple of 100" in w for w in plan["warnings"])
    assert any("lowered from 32 to 16" in w for w in plan["warnings"])
    assert s.budget.balance("local") == 600 - 30 == ledger_sum(s)
    assert [e.kind for e in s.jobs.events(job.id)] == ["state"]


def test_plan_warns_when_the_maximum_time_cannot_fit_the_steps(jobs_services: Services) -> None:
    plan, _, _ = jobs_services.jobs.plan("local", ["shapes"], steps=100_000, batch_size=16, max_minutes=5)
    assert any("more than the maximum of 5 min" in w for w in plan.warnings)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"steps": 0}, "Steps must be between 1 and 200000, not 0"),
        ({"steps": 300_000}, "Steps must be between"),
        ({"batch_size": 0}, "Batch size must be between"),
        ({"max_minutes": 0}, "Max minutes must be between 1 and 1440"),
        ({"model": "yolo"}, "Unknown model 'yolo'"),
    ],
)
def test_out_of_range_arguments_are_refused_and_nothing_is_stored(
    jobs_services: Services, kwargs: dict, message: str
) -> None:
    with pytest.raises(OutOfRange, match=message):
        jobs_services.jobs.create("local", ["shapes"], **kwargs)
    assert jobs_services.jobs.list_team("local") == []
    assert jobs_services.budget.balance("local") == 600


def test_a_job_that_would_overdraw_the_budget_is_refused_with_the_balance(jobs_services: Services) -> None:
    s = jobs_services
    s.jobs.create("local", ["shapes"], max_minutes=590)
    with pytest.raises(BudgetExhausted, match=r"has 10 min left\. Lower max minutes to 10"):
        s.jobs.create("local", ["shapes"], max_minutes=11)
    assert len(s.jobs.list_team("local")) == 1  # the refused job left no row
    assert s.budget.balance("local") == 10 == ledger_sum(s)
    s.budget.grant("local", 100, "regional")
    assert s.jobs.create("local", ["shapes"], max_minutes=11).state == JobState.QUEUED


def test_unknown_dataset_and_mixed_labels_are_refused(jobs_services: Services) -> None:
    s = jobs_services
    with pytest.raises(NotFound):
        s.jobs.create("local", ["nope"])
    other = good_files(3)
    other["Annotations/img0.xml"] = voc_xml("img0.jpg", objects=[("cone", 1, 1, 20, 20)])
    s.datasets.add("local", "cones", make_zip(other))
    with pytest.raises(DatasetLabelsDiffer, match="different labels"):
        s.jobs.create("local", ["shapes", "cones"])


def test_queue_limits_give_try_again_later_without_charging(settings: Settings, synth_zip: bytes) -> None:
    s = open_services(settings.model_copy(update={"max_queued_per_team": 2, "max_queued_total": 3}))
    s.datasets.add("a", "shapes", synth_zip)
    s.datasets.add("b", "shapes", synth_zip)
    first = [s.jobs.create("a", ["shapes"], max_minutes=10) for _ in range(2)]
    late = s.jobs.create("a", ["shapes"], max_minutes=10)
    assert [j.state for j in first] == [JobState.QUEUED] * 2
    assert late.state == JobState.TRY_AGAIN_LATER
    assert "queue is full" in s.jobs.events(late.id)[-1].data["reason"]  # type: ignore[operator]
    assert s.budget.balance("a") == 600 - 20
    # Team b is under its own limit but the global limit (3) is reached after one more.
    assert s.jobs.create("b", ["shapes"], max_minutes=10).state == JobState.QUEUED
    assert s.jobs.create("b", ["shapes"], max_minutes=10).state == JobState.TRY_AGAIN_LATER
    assert s.budget.balance("b") == 590
    s.close()


def test_stopping_a_queued_job_cancels_it_and_refunds_in_full(jobs_services: Services) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=45)
    stopped = s.jobs.request_stop("local", job.id)
    assert stopped.state == JobState.CANCELED
    assert s.budget.balance("local") == 600 == ledger_sum(s)
    with pytest.raises(JobEnded, match="already ended"):
        s.jobs.request_stop("local", job.id)
    assert [e.state for e in s.jobs.events(job.id)] == [JobState.QUEUED, JobState.CANCELED]


def test_other_teams_ids_are_not_found(jobs_services: Services) -> None:
    job = jobs_services.jobs.create("local", ["shapes"])
    with pytest.raises(NotFound, match=f"No job {job.id} in this team"):
        jobs_services.jobs.get("other-guild", job.id)
    with pytest.raises(NotFound):
        jobs_services.jobs.request_stop("other-guild", job.id)
    assert jobs_services.jobs.get("local", job.id).state == JobState.QUEUED
    assert jobs_services.jobs.list_team("other-guild") == []


def test_only_legal_transitions_happen_and_each_is_an_event(jobs_services: Services) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=20)
    with pytest.raises(IllegalTransition):
        s.jobs.transition(job.id, JobState.RUNNING)  # QUEUED cannot skip PREPARING
    claimed = s.jobs.claim("w1")
    assert claimed is not None and claimed.state == JobState.PREPARING and claimed.worker_id == "w1"
    s.jobs.transition(claimed.id, JobState.RUNNING)
    s.jobs.progress(claimed.id, "progress", {"step": 10}, steps_completed=10, training_seconds=61.0)
    done = s.jobs.finish(claimed.id, JobState.SUCCEEDED, training_seconds=61.0)
    with pytest.raises(IllegalTransition):
        s.jobs.transition(claimed.id, JobState.RUNNING)
    states = [e.state for e in s.jobs.events(job.id, kinds=("state",))]
    assert states == [JobState.QUEUED, JobState.PREPARING, JobState.RUNNING, JobState.SUCCEEDED]
    assert done.steps_completed == 10
    # 61 s of training is charged as 2 whole minutes; the other 18 come back.
    assert s.budget.balance("local") == 598 == ledger_sum(s)


def _claim_many(home: str, worker: str, out: multiprocessing.Queue, go: object) -> None:
    services = open_services(Settings(home=Path(home)))
    go.wait(30)  # type: ignore[attr-defined]  # both start claiming at the same moment
    claimed = []
    while (job := services.jobs.claim(worker)) is not None:
        claimed.append(job.id)
    out.put(claimed)


def test_two_workers_racing_never_claim_the_same_job(settings: Settings, synth_zip: bytes) -> None:
    settings = settings.model_copy(update={"max_queued_per_team": 100, "team_minutes": 1000})
    s = open_services(settings)
    s.datasets.add("local", "shapes", synth_zip)
    ids = [s.jobs.create("local", ["shapes"], max_minutes=1).id for _ in range(40)]
    s.close()
    ctx = multiprocessing.get_context("spawn")
    out, go = ctx.Queue(), ctx.Event()
    procs = [ctx.Process(target=_claim_many, args=(str(settings.home), f"w{i}", out, go)) for i in range(2)]
    for p in procs:
        p.start()
    time.sleep(2)
    go.set()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(10)
    claimed = results[0] + results[1]
    assert sorted(claimed) == ids  # every job exactly once


def _stale(services: Services, job_id: int, seconds: float = 600) -> None:
    old = (datetime.now(UTC) - timedelta(seconds=seconds)).isoformat()
    services.db.execute("UPDATE jobs SET heartbeat_at = ? WHERE id = ?", [old, job_id])


def _fake_checkpoint(folder: str, step: int) -> None:
    ckpt = Path(folder) / "checkpoints"
    (ckpt / f"step-{step:07d}").mkdir(parents=True)
    (ckpt / "latest.json").write_text(json.dumps({"path": f"step-{step:07d}", "step": step}))


def test_a_dead_workers_job_is_requeued_from_its_checkpoint_then_failed_when_attempts_run_out(
    jobs_services: Services,
) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=30)
    for attempt in range(1, 4):
        claimed = s.jobs.claim(f"w{attempt}")
        assert claimed is not None and claimed.attempts == attempt
        s.jobs.transition(job.id, JobState.RUNNING)
        if attempt == 1:
            _fake_checkpoint(claimed.checkpoint_dir, 100)  # type: ignore[arg-type]
        assert s.recovery.reap(60) == []  # the heartbeat is fresh
        _stale(s, job.id)
        assert s.recovery.reap(60) == [job.id]
        after = s.jobs.get("local", job.id)
        if attempt < 3:
            assert after.state == JobState.QUEUED and after.worker_id is None
            assert "resumes from its checkpoint at step 100" in s.jobs.events(job.id)[-1].data["reason"]
    failed = s.jobs.get("local", job.id)
    assert failed.state == JobState.FAILED
    assert "started 3 times" in failed.error and "checkpoint at step 100 is kept" in failed.error
    assert s.budget.balance("local") == 600 == ledger_sum(s)  # failed: refunded in full


def test_a_dead_job_with_a_stop_request_and_no_checkpoint_is_canceled(jobs_services: Services) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=30)
    s.jobs.claim("w")
    s.jobs.transition(job.id, JobState.RUNNING)
    assert s.jobs.request_stop("local", job.id).state == JobState.STOP_REQUESTED
    _stale(s, job.id)
    s.recovery.reap(60)
    assert s.jobs.get("local", job.id).state == JobState.CANCELED
    assert s.budget.balance("local") == 600


def test_a_worker_shutting_down_hands_its_job_back_without_using_an_attempt(jobs_services: Services) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=30)
    s.jobs.claim("w")
    assert s.recovery.release("w") == [job.id]
    again = s.jobs.get("local", job.id)
    assert again.state == JobState.QUEUED and again.attempts == 0


def test_ledger_explains_the_balance_line_by_line(jobs_services: Services) -> None:
    s = jobs_services
    a = s.jobs.create("local", ["shapes"], max_minutes=20)
    s.jobs.claim("w")
    s.jobs.transition(a.id, JobState.RUNNING)
    s.jobs.request_stop("local", a.id)
    s.jobs.finish(a.id, JobState.STOPPED, training_seconds=5 * 60 + 1)
    s.budget.grant("local", 50, "state championship")
    reasons = [(e.minutes, e.reason) for e in s.budget.entries("local")]
    assert reasons == [
        (600, "initial"),
        (-20, f"reserve job {a.id}"),
        (14, f"refund job {a.id} (used 6 of 20 min)"),
        (50, "grant: state championship"),
    ]
    assert s.budget.balance("local") == 644


def test_monthly_reset_tops_up_once_per_month(jobs_services: Services) -> None:
    s = jobs_services
    s.jobs.create("local", ["shapes"], max_minutes=100)
    now = datetime(2026, 12, 1, tzinfo=UTC)
    assert s.budget.reset_all(now) == ["local"]
    assert s.budget.balance("local") == 600
    assert s.budget.reset_all(now + timedelta(days=3)) == []  # same month: once
    assert s.budget.balance("local") == 600 == ledger_sum(s)


def test_grant_rejects_nonsense(jobs_services: Services) -> None:
    with pytest.raises(OutOfRange):
        jobs_services.budget.grant("local", 0)


def test_scheduler_recovers_dead_jobs_at_start_up(settings: Settings, synth_zip: bytes) -> None:
    s = open_services(settings)
    s.datasets.add("local", "shapes", synth_zip)
    job = s.jobs.create("local", ["shapes"], max_minutes=10)
    s.jobs.claim("gone")
    _stale(s, job.id)
    scheduler = start_scheduler(settings)
    try:
        deadline = time.monotonic() + 20
        while s.jobs.get("local", job.id).state != JobState.QUEUED and time.monotonic() < deadline:
            time.sleep(0.1)
        assert s.jobs.get("local", job.id).state == JobState.QUEUED
        assert {j.id for j in scheduler.get_jobs()} == {"reap-dead-jobs", "prune-checkpoints"}
        assert all(j.coalesce and j.misfire_grace_time is None for j in scheduler.get_jobs())
    finally:
        scheduler.shutdown()
        s.close()


def test_prune_keeps_latest_and_best_of_ended_jobs(jobs_services: Services, settings: Settings) -> None:
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=10)
    s.jobs.request_stop("local", job.id)
    folder = Path(s.jobs.get("local", job.id).checkpoint_dir)  # type: ignore[arg-type]
    for step in (100, 200):
        (folder / "checkpoints" / f"step-{step:07d}").mkdir(parents=True)
    (folder / "checkpoints" / "best").mkdir()
    _fake_checkpoint(str(folder), 300)
    assert prune_checkpoints(str(settings.home)) == 2
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == [
        "best",
        "latest.json",
        "step-0000300",
    ]


def test_continue_needs_the_same_labels(jobs_services: Services, tmp_path: Path) -> None:
    s = jobs_services
    folder = write_model_folder(tmp_path / "m", labels=["x"]).path
    model = s.models.register("local", folder, "old")
    with pytest.raises(DatasetLabelsDiffer, match="Continue a model only on datasets with the same labels"):
        s.jobs.create("local", ["shapes"], from_model_id=model.id)
    with pytest.raises(NotFound):
        s.jobs.create("local", ["shapes"], from_model_id=model.id + 99)


def test_make_voc_zip_is_importable_for_fixtures() -> None:
    assert make_voc_zip(images=2, seed=1)[:2] == b"PK"


def test_reaping_rechecks_the_heartbeat_under_the_lock(jobs_services: Services) -> None:
    """A reaper that saw a stale job must not requeue it after a worker has claimed it meanwhile."""
    s = jobs_services
    job = s.jobs.create("local", ["shapes"], max_minutes=10)
    seen_stale_before = datetime.now(UTC) - timedelta(seconds=1)  # the reaper's query, before the claim
    s.jobs.claim("fresh-worker")
    assert s.recovery.recover(job.id, "test", True, seen_stale_before) is False
    assert s.jobs.get("local", job.id).state == JobState.PREPARING
