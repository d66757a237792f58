"""`fieldlens job ...`, `fieldlens budget ...` and `fieldlens worker`: training as a shared service."""

from __future__ import annotations

import sys
import time

import click

from fieldlens.cli.common import State, emit, json_option, team_option
from storage.domain import Job, JobState
from storage.jobs import job_json
from storage.plan import MODELS
from storage.services import Services

FAILED_STATES = {JobState.FAILED, JobState.TRY_AGAIN_LATER}


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def job_line(job: Job) -> str:
    text = (
        f"#{job.id:<4} {job.state:<15} {job.steps_completed:>6}/{job.steps:<6} steps "
        f"{_duration(job.training_seconds)}  {job.model}"
    )
    if job.metrics.get("map50_int8") is not None:
        text += f"  mAP@0.5 int8 {job.metrics['map50_int8']:.3f}"
    elif job.metrics.get("map50") is not None:
        text += f"  val mAP@0.5 {job.metrics['map50']:.3f}"
    return text + (f"  {job.description}" if job.description else "")


def job_text(services: Services, job: Job) -> str:
    progress = services.jobs.last_progress(job.id)
    lines = [job_line(job)]
    if job.state in (JobState.RUNNING, JobState.STOP_REQUESTED) and progress:
        eta = progress.get("eta_seconds")
        lines.append(
            f"  loss {progress.get('loss', 0):.3f}, {progress.get('images_per_second', 0):.1f} images/s, "
            f"ETA {_duration(float(eta)) if eta else '--'}"  # type: ignore[arg-type]
        )
    if job.error:
        lines.append(f"  {job.error}")
    for event in services.jobs.events(job.id, kinds=("state",))[-1:]:
        reason = event.data.get("verdict") or event.data.get("reason")
        if reason and job.state != JobState.FAILED:
            lines.append(f"  {reason}")
    if job.model_id:
        lines.append(f"  model #{job.model_id}: `fieldlens model list` shows its files")
    return "\n".join(lines)


@click.group()
def job() -> None:
    """Queue training jobs for a worker, follow them and stop them."""


@job.command("start")
@click.option("--dataset", "datasets", multiple=True, required=True, help="Dataset to train on (repeatable).")
@click.option("--model", type=click.Choice(MODELS), default=MODELS[0], show_default=True, help="Detector.")
@click.option("--steps", type=int, default=1000, show_default=True, help="Training steps (1-200000).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per step.")
@click.option(
    "--max-minutes",
    type=int,
    default=60,
    show_default=True,
    help="Training-time limit, reserved from the budget.",
)
@click.option("--description", default="", help="A note to recognise the job by.")
@click.option("--from-model", type=int, default=None, help="Continue training this model (its id).")
@click.option(
    "--weights",
    default="imagenet",
    show_default=True,
    help="Backbone start: 'imagenet' (downloaded once), 'none', or a Keras weights file.",
)
@click.option("--input-size", type=click.IntRange(96, 640), default=None, help="Model input (default 320).")
@click.option(
    "--alpha", type=click.Choice(["0.35", "0.5", "0.75", "1.0"]), default=None, help="MobileNetV2 width."
)
@click.option("--learning-rate", type=click.FloatRange(1e-6, 1.0), default=None, help="Peak learning rate.")
@click.option(
    "--checkpoint-every",
    type=click.IntRange(1, 100_000),
    default=None,
    help="Steps between checkpoints (100).",
)
@team_option
@json_option
@click.pass_obj
def start(
    state: State,
    datasets: tuple[str, ...],
    model: str,
    steps: int,
    batch_size: int,
    max_minutes: int,
    description: str,
    from_model: int | None,
    weights: str,
    input_size: int | None,
    alpha: str | None,
    learning_rate: float | None,
    checkpoint_every: int | None,
    team: str,
    as_json: bool,
) -> None:
    """Queue a training job; a worker (`fieldlens worker`) runs it."""
    config: dict[str, object] = {"weights": weights}
    for key, value in (
        ("input_size", input_size),
        ("alpha", float(alpha) if alpha else None),
        ("learning_rate", learning_rate),
        ("checkpoint_every", checkpoint_every),
    ):
        if value is not None:
            config[key] = value
    services = state.services
    created = services.jobs.create(
        team, list(datasets), model, steps, batch_size, max_minutes, description, from_model, config
    )
    plan = created.config["plan"]
    data = job_json(created) | {"minutes_left": services.budget.balance(team)}
    if created.state == JobState.TRY_AGAIN_LATER:
        reason = services.jobs.events(created.id)[-1].data["reason"]
        emit(data, f"Job #{created.id}: TRY_AGAIN_LATER. {reason}")
        sys.exit(1)
    lines = [
        f"Queued job #{created.id}: {model}, {steps} steps, up to {max_minutes} min "
        f"(reserved; {data['minutes_left']:g} min left).",
        f"  batch size {plan['batch_size']}, {plan['steps_per_epoch']} steps per epoch, "  # type: ignore[index]
        f"{plan['epochs']} epochs; estimated {plan['estimated_seconds'] / 60:.0f} min.",  # type: ignore[index]
        *(f"  note: {w}" for w in plan["warnings"]),  # type: ignore[index]
        f"Follow it with `fieldlens job wait {created.id}`.",
    ]
    emit(data, "\n".join(lines))


@job.command("list")
@team_option
@json_option
@click.pass_obj
def list_(state: State, team: str, as_json: bool) -> None:
    """The team's jobs, newest first."""
    jobs = state.services.jobs.list_team(team)
    emit(
        [job_json(j) for j in jobs],
        "\n".join(job_line(j) for j in jobs) or "No jobs yet. Start one with `fieldlens job start`.",
    )


@job.command("status")
@click.argument("job_id", type=int)
@team_option
@json_option
@click.pass_obj
def status(state: State, job_id: int, team: str, as_json: bool) -> None:
    """State, progress and result of job JOB_ID."""
    services = state.services
    j = services.jobs.get(team, job_id)
    emit(job_json(j, services.jobs.last_progress(j.id)), job_text(services, j))


@job.command("stop")
@click.argument("job_id", type=int)
@team_option
@json_option
@click.pass_obj
def stop(state: State, job_id: int, team: str, as_json: bool) -> None:
    """Stop job JOB_ID: a queued job is canceled; a running one keeps its last checkpoint."""
    services = state.services
    j = services.jobs.request_stop(team, job_id)
    text = (
        f"Job #{j.id} canceled before it started; its minutes are refunded."
        if j.state == JobState.CANCELED
        else f"Stop requested for job #{j.id}: it saves a checkpoint and stops within a step."
    )
    emit(job_json(j), text)


@job.command("wait")
@click.argument("job_id", type=int)
@click.option("--timeout", type=float, default=None, help="Give up after this many seconds.")
@team_option
@json_option
@click.pass_obj
def wait(state: State, job_id: int, timeout: float | None, team: str, as_json: bool) -> None:
    """Follow job JOB_ID with a progress bar until it ends."""
    services = state.services
    j = follow(services, team, job_id, timeout, show=not as_json)
    emit(job_json(j, services.jobs.last_progress(j.id)), job_text(services, j))
    if j.state in FAILED_STATES or not j.state.is_final:
        sys.exit(1)


def follow(services: Services, team: str, job_id: int, timeout: float | None, show: bool) -> Job:
    """Poll the job's events, drawing a bar on stderr, until it ends (or `timeout`)."""
    deadline = time.monotonic() + timeout if timeout else None
    seen = 0
    j = services.jobs.get(team, job_id)
    while True:
        for event in services.jobs.events(job_id, after=seen):
            seen = event.id
            if not show:
                continue
            if event.kind == "state":
                click.echo(f"\n[{event.at:%H:%M:%S}] {event.state}", err=True, nl=False)
            elif event.kind == "progress":
                d = event.data
                done, total = int(d["step"]), int(d["steps"])  # type: ignore[call-overload]
                eta = d.get("eta_seconds")
                click.echo(
                    f"\r[{'#' * (30 * done // total):<30}] {done}/{total} steps | "
                    f"{d['images_per_second']:.1f} img/s | loss {d['loss']:.3f} | "
                    f"ETA {_duration(float(eta)) if eta else '--'}  ",  # type: ignore[arg-type]
                    err=True,
                    nl=False,
                )
            elif event.kind == "checkpoint" and event.data.get("map50") is not None:
                click.echo(
                    f"\n  checkpoint at step {event.data['step']}: val mAP@0.5 {event.data['map50']:.3f}",
                    err=True,
                    nl=False,
                )
        j = services.jobs.get(team, job_id)
        if j.state.is_final or (deadline and time.monotonic() > deadline):
            if show:
                click.echo("", err=True)
            return j
        time.sleep(0.5)


@click.group()
def budget() -> None:
    """Training minutes: what is left, and grants."""


@budget.command("show")
@team_option
@json_option
@click.pass_obj
def show(state: State, team: str, as_json: bool) -> None:
    """The team's minutes left and every ledger line behind the number."""
    b = state.services.budget
    entries = b.entries(team)
    left = b.balance(team)
    data = {
        "team": team,
        "minutes_left": left,
        "ledger": [
            {"at": e.at.isoformat(), "minutes": e.minutes, "reason": e.reason, "job_id": e.job_id}
            for e in entries
        ],
    }
    lines = [f"{e.at:%Y-%m-%d %H:%M}  {e.minutes:>+8g}  {e.reason}" for e in entries]
    emit(data, "\n".join([*lines, f"Minutes left: {left:g}"]))


@budget.command("grant")
@click.argument("team_id")
@click.argument("minutes", type=int)
@click.option("--reason", default="", help="Why (kept in the ledger).")
@json_option
@click.pass_obj
def grant(state: State, team_id: str, minutes: int, reason: str, as_json: bool) -> None:
    """Admin: give team TEAM_ID MINUTES more training minutes."""
    left = state.services.budget.grant(team_id, minutes, reason)
    emit({"team": team_id, "minutes_left": left}, f"Granted {minutes} min to {team_id}; {left:g} min left.")


@click.command()
@click.option("--slots", type=click.IntRange(1, 16), default=1, show_default=True, help="Jobs at a time.")
@click.option("--gpus", default="", help="GPU ids to use, one job on each (e.g. 0,1); overrides --slots.")
@click.option("--once", is_flag=True, help="Run the queued jobs, then exit when the queue is empty.")
@click.pass_obj
def worker(state: State, slots: int, gpus: str, once: bool) -> None:
    """Run queued training jobs, each in its own process, until interrupted."""
    import signal

    from storage.maintenance import start_scheduler
    from trainer.worker import Worker

    w = Worker(state.settings, slots=slots, gpus=[g.strip() for g in gpus.split(",") if g.strip()])
    signal.signal(signal.SIGTERM, lambda *_: w.stop())
    scheduler = start_scheduler(state.settings)
    click.echo(f"Worker {w.worker_id} waiting for jobs in {state.settings.home} (Ctrl-C stops).", err=True)
    try:
        ran = w.run(exit_when_idle=once)
    except KeyboardInterrupt:
        w.stop()
        ran = 0
    finally:
        scheduler.shutdown(wait=False)
    click.echo(f"Worker stopped after {ran} job(s).", err=True)
