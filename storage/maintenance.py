"""Periodic maintenance, scheduled with APScheduler 3.x in every long-running process.

    reap-dead-jobs     every heartbeat timeout / 2: jobs of silent workers are requeued or failed
    prune-checkpoints  hourly: ended jobs keep only their latest and best checkpoints
    budget-reset       monthly on FIELDLENS_BUDGET_RESET_DAY, if set: teams topped up to team_minutes

The job functions live at module level and take only the data folder (a string), so any job store
could hold them. The jobs table stays the source of truth: every run looks at the database afresh,
every function is idempotent, and all of them run once at start-up, so a run missed while the
process was down still happens (once: `coalesce`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from storage.checkpoints import Checkpoints
from storage.services import open_services
from storage.settings import Settings, load_settings

log = logging.getLogger(__name__)


def reap_dead_jobs(home: str) -> list[int]:
    services = open_services(load_settings(home=home))
    try:
        recovered = services.recovery.reap(services.settings.worker_timeout_seconds)
    finally:
        services.close()
    if recovered:
        log.warning("recovered jobs of dead workers: %s", recovered)
    return recovered


def prune_checkpoints(home: str) -> int:
    """Delete checkpoints of ended jobs other than `latest` and `best`; returns folders removed."""
    services = open_services(load_settings(home=home))
    removed = 0
    try:
        rows = services.db.execute(
            "SELECT checkpoint_dir FROM jobs WHERE checkpoint_dir IS NOT NULL AND state IN"
            " ('STOPPED', 'CANCELED', 'SUCCEEDED', 'FAILED')"
        ).fetchall()
    finally:
        services.close()
    for (folder,) in rows:
        removed += Checkpoints(folder).prune()
    return removed


def reset_budgets(home: str) -> list[str]:
    services = open_services(load_settings(home=home))
    try:
        return services.budget.reset_all(datetime.now(UTC))
    finally:
        services.close()


def start_scheduler(settings: Settings) -> BackgroundScheduler:
    """Register the maintenance jobs (replacing any of the same id) and start them in a thread."""
    scheduler = BackgroundScheduler(
        timezone=UTC, job_defaults={"coalesce": True, "misfire_grace_time": None, "max_instances": 1}
    )
    home, now = str(settings.home), datetime.now(UTC)
    scheduler.add_job(
        reap_dead_jobs,
        "interval",
        seconds=max(settings.worker_timeout_seconds / 2, 1.0),
        args=[home],
        id="reap-dead-jobs",
        replace_existing=True,
        next_run_time=now,
    )
    scheduler.add_job(
        prune_checkpoints,
        "interval",
        hours=1,
        args=[home],
        id="prune-checkpoints",
        replace_existing=True,
        next_run_time=now,
    )
    if settings.budget_reset_day is not None:
        # Catch up at start-up when this month's reset day has passed (idempotent per month).
        # (next_run_time=None would pause the job, so it is left out when not due.)
        catch_up = {"next_run_time": now} if now.day >= settings.budget_reset_day else {}
        scheduler.add_job(
            reset_budgets,
            CronTrigger(day=settings.budget_reset_day, timezone=UTC),
            args=[home],
            id="budget-reset",
            replace_existing=True,
            **catch_up,
        )
    scheduler.start()
    return scheduler
