"""`fieldlens train ...` (and its old name `fieldlens job ...`): queue, follow, stop and retry jobs."""

from __future__ import annotations

import sys
import time

import click

from fieldlens.cli.common import State, emit, job_json, json_option, team_option
from fieldlens.cli.terminal import StepBar
from storage.domain import Job, JobState
from storage.errors import OutOfRange
from storage.job_folder import LOG_TAIL_BYTES, JobFolder, JobLog
from storage.job_retry import RETRYABLE, retry_job
from storage.plan import MODELS, suggested_steps
from storage.services import Services
from storage.wording import EPOCH_SENTENCE, STATE_SENTENCES, duration, model_choice

FAILED_STATES = {JobState.FAILED, JobState.TRY_AGAIN_LATER}


def job_line(job: Job) -> str:
    text = (
        f"job {job.id:<4} {job.state:<15} {job.steps_completed:>6}/{job.steps:<6} steps "
        f"{duration(job.training_seconds)}  {job.model}"
    )
    if job.metrics.get("map50_int8") is not None:
        text += f"  mAP@0.5 int8 {job.metrics['map50_int8']:.3f}"
    elif job.metrics.get("map50") is not None:
        text += f"  val mAP@0.5 {job.metrics['map50']:.3f}"
    return text + (f"  {job.description}" if job.description else "")


def job_text(services: Services, job: Job) -> str:
    progress = services.jobs.last_progress(job.id)
    lines = [job_line(job), f"  {STATE_SENTENCES.get(job.state, '')}"]
    if job.state in (JobState.RUNNING, JobState.STOP_REQUESTED) and progress:
        eta = progress.get("eta_seconds")
        lines.append(
            f"  loss {progress.get('loss', 0):.3f}, {progress.get('images_per_second', 0):.1f} images/s, "
            f"ETA {duration(eta)}"
        )
    if job.error:
        lines.append(f"  {job.error}")
    for event in services.jobs.events(job.id, kinds=("state",))[-1:]:
        reason = event.data.get("verdict") or event.data.get("reason")
        if reason and job.state != JobState.FAILED:
            lines.append(f"  {reason}")
    if job.model_id:
        lines.append(
            f"  model {job.model_id}: `fieldlens model info {job.model_id}` shows its metrics and files"
        )
    if job.state in RETRYABLE:
        lines.append(
            f"  `fieldlens train retry {job.id}` runs it again (from its last checkpoint if it has one)"
        )
    return "\n".join(lines)


@click.group(hidden=True)
def job() -> None:
    """The old name of `fieldlens train start|list|status|stop|wait|retry|continue`."""


@job.command("start")
@click.option("--dataset", "datasets", multiple=True, required=True, help="Dataset to train on (repeatable).")
@click.option(
    "--model",
    type=click.Choice(MODELS),
    default=MODELS[0],
    show_default=True,
    help="Detector: " + "; ".join(model_choice(m) for m in MODELS) + ".",
)
@click.option("--steps", type=int, default=None, help="Training steps (1-200000; default: about 100 epochs).")
@click.option(
    "--batch-size",
    type=int,
    default=32,
    show_default=True,
    help="Images per step; halve it if a job ran out of memory.",
)
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
    steps: int | None,
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
    """Queue a training job (like /train start); a worker (`fieldlens worker`) runs it."""
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
    if steps is None:
        every = int(config.get("checkpoint_every", 100))  # type: ignore[call-overload]
        p, _, _ = services.jobs.plan(team, list(datasets), model, every, batch_size, max_minutes, every)
        steps = suggested_steps(p.train_images, p.batch_size, every)
    created = services.jobs.create(
        team, list(datasets), model, steps, batch_size, max_minutes, description, from_model, config
    )
    emit_created(services, team, created)


def emit_created(services: Services, team: str, created: Job, what: str = "Queued") -> None:
    """Say what was queued, with its plan, or why it was not (and exit 1)."""
    plan = created.config["plan"]
    data = job_json(created) | {"minutes_left": services.budget.balance(team)}
    if created.state == JobState.TRY_AGAIN_LATER:
        reason = services.jobs.events(created.id)[-1].data["reason"]
        emit(data, f"Job {created.id}: TRY_AGAIN_LATER. {reason} (`fieldlens train retry {created.id}`)")
        sys.exit(1)
    lines = [
        f"{what} job {created.id}: {created.model}, {created.steps} steps, up to {created.max_minutes} min "
        f"(reserved; {data['minutes_left']:g} min left).",
        f"  batch size {plan['batch_size']}, {plan['steps_per_epoch']} steps per epoch, "  # type: ignore[index]
        f"{plan['epochs']} epochs; estimated {plan['estimated_seconds'] / 60:.0f} min.",  # type: ignore[index]
        f"  {EPOCH_SENTENCE}",
        *(f"  note: {w}" for w in plan["warnings"]),  # type: ignore[index]
        f"Follow it with `fieldlens train wait {created.id}`.",
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
        "\n".join(job_line(j) for j in jobs) or "No jobs yet. Start one with `fieldlens train start`.",
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
        f"Job {j.id} was canceled before it started; its minutes are back."
        if j.state == JobState.CANCELED
        else f"Stopping job {j.id} after the current step; it keeps its last checkpoint and delivers that "
        f"model. `fieldlens train retry {j.id}` can finish the remaining steps later."
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
    state.quiet("train-wait")
    services = state.services
    j = follow(services, team, job_id, timeout, show=not as_json)
    emit(job_json(j, services.jobs.last_progress(j.id)), job_text(services, j))
    if j.state in FAILED_STATES or not j.state.is_final:
        sys.exit(1)


def follow(services: Services, team: str, job_id: int, timeout: float | None, show: bool) -> Job:
    """Poll the job's events, with a progress bar on stderr, until it ends (or `timeout`)."""
    deadline = time.monotonic() + timeout if timeout else None
    seen = 0
    with StepBar(enabled=show, title="QUEUED") as bar:
        while True:
            for event in services.jobs.events(job_id, after=seen):
                seen = event.id
                d = event.data
                if event.kind == "state" and event.state is not None:
                    bar.state(str(event.state))
                    bar.note(
                        f"[{event.at:%H:%M:%S}] job {job_id} is now {event.state}: "
                        f"{STATE_SENTENCES.get(event.state, '')}"
                    )
                elif event.kind == "progress":
                    bar.step(
                        int(d["step"]),  # type: ignore[call-overload]
                        int(d["steps"]),  # type: ignore[call-overload]
                        float(d["images_per_second"]),  # type: ignore[arg-type]
                        float(d["loss"]),  # type: ignore[arg-type]
                        d.get("eta_seconds"),
                    )
                elif event.kind == "checkpoint" and d.get("map50") is not None:
                    bar.note(f"  checkpoint at step {d['step']}: val mAP@0.5 {d['map50']:.3f}")
            j = services.jobs.get(team, job_id)
            if j.state.is_final or (deadline and time.monotonic() > deadline):
                return j
            time.sleep(0.5)


@job.command("logs")
@click.argument("job_id", type=int)
@click.option(
    "--all", "whole", is_flag=True, help=f"The whole log, not only its last {LOG_TAIL_BYTES // 1000} KB."
)
@team_option
@json_option
@click.pass_obj
def logs(state: State, job_id: int, whole: bool, team: str, as_json: bool) -> None:
    """What job JOB_ID's training process printed, warnings first."""
    j = state.services.jobs.get(team, job_id)
    folder = JobFolder(j.checkpoint_dir) if j.checkpoint_dir else None
    log = folder.read_log(None if whole else LOG_TAIL_BYTES) if folder else JobLog([], [], False)
    data = {
        "job": j.id,
        "state": str(j.state),
        "error": j.error,
        "warnings": log.warnings,
        "lines": log.lines,
    }
    if log.empty:
        emit(data, f"No log yet: job {j.id} is {j.state} and its training process has not started.")
        return
    parts = [f"job {j.id} {j.state}" + (f": {j.error}" if j.error else "")]
    if log.warnings:
        parts += [f"Warnings ({len(log.warnings)}):", *(f"  {w}" for w in log.warnings), ""]
    parts.append("Log (its end; --all for the whole of it):" if log.truncated else "Log:")
    emit(data, "\n".join(parts + log.lines))


@job.command("retry")
@click.argument("job_id", type=int)
@click.option(
    "--batch-size", type=click.IntRange(1, 512), default=None, help="Images per step (default: the job's)."
)
@click.option(
    "--max-minutes", type=int, default=None, help="Training-time limit to reserve (default: the job's)."
)
@team_option
@json_option
@click.pass_obj
def retry(
    state: State, job_id: int, batch_size: int | None, max_minutes: int | None, team: str, as_json: bool
) -> None:
    """Run ended job JOB_ID again as a new job, from its last checkpoint when it has one."""
    services = state.services
    created = retry_job(services.jobs, team, job_id, batch_size, max_minutes)
    step = created.config.get("resume_step")
    where = f"from its checkpoint at step {step}" if step else "from the start"
    emit_created(services, team, created, f"Retrying job {job_id} {where} as")


@job.command("continue")
@click.argument("model_id", type=int)
@click.option("--dataset", "datasets", multiple=True, help="Dataset (repeatable; default: the model's).")
@click.option("--steps", type=int, default=None, help="More training steps (default: about 100 epochs).")
@click.option("--batch-size", type=int, default=32, show_default=True, help="Images per step.")
@click.option("--max-minutes", type=int, default=60, show_default=True, help="Training-time limit, reserved.")
@team_option
@json_option
@click.pass_obj
def continue_(
    state: State,
    model_id: int,
    datasets: tuple[str, ...],
    steps: int | None,
    batch_size: int,
    max_minutes: int,
    team: str,
    as_json: bool,
) -> None:
    """Train model MODEL_ID more (ftc-ml's More Training): a new job makes a new model."""
    services = state.services
    parent = services.models.get(team, model_id)
    names = list(datasets)
    if not names:
        if parent.job_id is None:
            raise OutOfRange("That model was not trained by a job here; name its datasets with --dataset.")
        names = [
            services.datasets.get_by_id(team, i).name
            for i in services.jobs.get(team, parent.job_id).dataset_ids
        ]
    if steps is None:
        p, _, _ = services.jobs.plan(team, names, steps=100, batch_size=batch_size, max_minutes=max_minutes)
        steps = suggested_steps(p.train_images, p.batch_size)
    created = services.jobs.create(
        team,
        names,
        steps=steps,
        batch_size=batch_size,
        max_minutes=max_minutes,
        description=f"more training of model {model_id}",
        from_model_id=model_id,
    )
    emit_created(services, team, created)
