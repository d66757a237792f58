"""Embeds and views: how datasets, plans, jobs and models look in Discord."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from bot.shared import stop_job
from storage.datasets import DatasetReport, split_counts
from storage.domain import Job, JobState, Model
from storage.model_folder import Manifest
from storage.plan import Plan, suggested_steps
from storage.wording import EPOCH_SENTENCE, STATE_SENTENCES, duration, model_choice

RETRYABLE = frozenset({JobState.FAILED, JobState.STOPPED, JobState.CANCELED, JobState.TRY_AGAIN_LATER})
COLOURS = {
    JobState.SUCCEEDED: discord.Colour.green(),
    JobState.STOPPED: discord.Colour.dark_green(),
    JobState.FAILED: discord.Colour.red(),
    JobState.CANCELED: discord.Colour.light_grey(),
    JobState.TRY_AGAIN_LATER: discord.Colour.orange(),
}


def bar(done: int, total: int, width: int = 20) -> str:
    filled = int(width * done / max(total, 1))
    return "█" * filled + "░" * (width - filled)


def _clip(lines: list[str], limit: int = 1000) -> str:
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 2] + " …"


def with_pages(text: str, dashboard: str, limit: int = 1900) -> str:
    """A list message (whole lines, cut to fit) and the link to the team's pages, where each item has one."""
    footer = f"\nEach one's page (charts, pictures, files): <{dashboard}>"
    lines = text.splitlines()
    kept: list[str] = []
    for line in lines:
        if sum(len(k) + 1 for k in kept) + len(line) + len(footer) > limit:
            kept.append(f"… and {len(lines) - len(kept)} more")
            break
        kept.append(line)
    return "\n".join(kept) + footer


def dataset_embed(report: DatasetReport, page: str | None = None) -> discord.Embed:
    """`page`: a signed link to the dataset's page (its title links there)."""
    d = report.dataset
    e = discord.Embed(
        title=f"Dataset {d.name}",
        url=page,
        description=f"{d.image_count} images ({split_counts(report)}), "
        f"{d.box_count} boxes, {report.negative_images} images without boxes.\n"
        f"Read as a {d.layout} export. {d.split_note}",
        colour=discord.Colour.blue(),
    )
    e.add_field(
        name="Labels (boxes / images)",
        value=_clip([f"`{k}`: {v} / {report.label_images.get(k, 0)}" for k, v in d.label_counts.items()])
        or "none",
        inline=False,
    )
    if d.warnings:
        e.add_field(name="Warnings", value=_clip([f"- {w}" for w in d.warnings]), inline=False)
    if d.lint:
        e.add_field(name="Advice", value=_clip([f"- {w}" for w in d.lint]), inline=False)
    e.set_footer(text=f"Train on it: /train start datasets:{d.name}")
    return e


def plan_embed(
    names: list[str],
    model: str,
    plan: Plan,
    max_minutes: int,
    minutes_left: float,
    checkpoint_every: int = 100,
    title: str = "Start training?",
) -> discord.Embed:
    e = discord.Embed(title=title, description=plan.summary(), colour=discord.Colour.blurple())
    e.add_field(name="Datasets", value=", ".join(names))
    e.add_field(name="Model", value=model_choice(model), inline=False)
    e.add_field(name="Batch size", value=f"{plan.batch_size} images per step")
    e.add_field(
        name="Epochs",
        value=f"{plan.epochs:.1f} ({plan.steps} steps of {plan.steps_per_epoch:.1f} per epoch)",
    )
    e.add_field(name="Estimated time", value=f"{plan.estimated_seconds / 60:.0f} min")
    suggested = suggested_steps(plan.train_images, plan.batch_size, checkpoint_every)
    advice = EPOCH_SENTENCE
    if suggested != plan.steps:
        advice += (
            f" For {plan.train_images} training images that is `steps:{suggested}`, "
            f"about {plan.seconds_for(suggested) / 60:.0f} min here."
        )
    e.add_field(name="What is an epoch?", value=advice, inline=False)
    e.add_field(
        name="Budget", value=f"reserves {max_minutes} min of {minutes_left:g} left; unused minutes come back"
    )
    if minutes_left < max_minutes:
        fix = f"lower `max_minutes:` to {int(minutes_left)} or ask" if minutes_left >= 1 else "ask"
        e.add_field(
            name="Not enough minutes",
            value=f"Start will be refused: {fix} the FieldLens operators for more (`/budget show` says who).",
            inline=False,
        )
    if plan.warnings:
        e.add_field(name="Notes", value=_clip([f"- {w}" for w in plan.warnings]), inline=False)
    return e


def job_embed(job: Job, progress: dict[str, Any], page: str | None = None) -> discord.Embed:
    """`page`: a signed link to the job's page, with its live charts (the title links there)."""
    e = discord.Embed(
        title=f"Job {job.id}: {job.state}",
        url=page,
        description="\n".join(filter(None, [STATE_SENTENCES.get(job.state), job.description])),
        colour=COLOURS.get(job.state, discord.Colour.blurple()),
    )
    e.add_field(
        name="Progress",
        value=f"`{bar(job.steps_completed, job.steps)}` {job.steps_completed}/{job.steps} steps",
        inline=False,
    )
    e.add_field(name="Training time", value=duration(job.training_seconds))
    if not job.state.is_final:
        e.add_field(name="ETA", value=duration(progress.get("eta_seconds")))
    if progress.get("loss") is not None:
        e.add_field(name="Loss", value=f"{progress['loss']:.3f}")
    m = job.metrics
    if m.get("map50_int8") is not None:
        e.add_field(name="mAP@0.5 (int8 / float)", value=f"{m['map50_int8']:.3f} / {m['map50_float']:.3f}")
    elif m.get("map50") is not None:
        e.add_field(name="val mAP@0.5", value=f"{m['map50']:.3f}")
    if job.error:
        e.add_field(name="What went wrong", value=job.error[:1000], inline=False)
    if job.model_id:
        e.add_field(name="Model", value=f"model {job.model_id} (`/model download model:{job.model_id}`)")
    if job.state in RETRYABLE:
        e.add_field(name="What next", value=f"`/train retry job:{job.id}`", inline=False)
    e.set_footer(text=f"{job.model} · max {job.max_minutes} min")
    return e


def model_embed(model: Model, manifest: Manifest, page: str | None = None) -> discord.Embed:
    """`page`: a signed link to the model's page (its title links there)."""
    m = manifest.metrics
    e = discord.Embed(
        title=f"Model {model.id}", url=page, description=manifest.verdict, colour=discord.Colour.green()
    )
    e.add_field(name="Name", value=model.name[:200])
    e.add_field(name="Labels", value=", ".join(model.labels)[:1000])
    e.add_field(name="mAP@0.5 int8 / float", value=f"{m.map50_int8:.3f} / {m.map50_float:.3f}")
    e.add_field(name="mAP@0.5:0.95 int8 / float", value=f"{m.map50_95_int8:.3f} / {m.map50_95_float:.3f}")
    per_class = m.per_class_ap50
    if per_class:
        e.add_field(
            name="AP@0.5 per label (int8)",
            value=_clip([f"`{k}` {v:.3f}" for k, v in per_class.items()]),
            inline=False,
        )
    if per_class and (unmeasured := [label for label in model.labels if label not in per_class]):
        e.add_field(
            name="Not measured",
            value=_clip([f"No validation image shows {', '.join(f'`{u}`' for u in unmeasured)}."]),
            inline=False,
        )
    if manifest.thresholds is not None:
        t = manifest.thresholds
        e.add_field(
            name="Score thresholds (what the robot uses)",
            value=_clip([t.robot_sentence(), *t.label_lines()]),
            inline=False,
        )
    if model.promoted:
        e.add_field(name="Robots", value="**Promoted**: `fieldlens-edge pull` gets this model.")
    elif model.flagged:
        e.add_field(name="Robots", value="Flagged: it failed the int8 check, so robots never get it.")
    if model.parent_model_id:
        e.add_field(name="Continued from", value=f"model {model.parent_model_id}")
    int8 = manifest.files.get("int8")
    megabytes = int8.bytes / 1e6 if int8 else 0.0
    e.set_footer(text=f"int8 {megabytes:.2f} MB · {manifest.input_size} px · {manifest.model}")
    return e


async def report_error(interaction: discord.Interaction, error: Exception) -> None:
    """Hand a button's error to the bot's one error handler (the command tree's `on_error`)."""
    await interaction.client.tree.on_error(interaction, error)  # type: ignore[attr-defined]


class FieldLensView(discord.ui.View):
    """Every view's base: an error in a button goes to the one error handler, so the user reads the
    same sentence a slash command would give (discord.py only logs it, and Discord shows "This
    interaction failed")."""

    async def on_error(
        self, interaction: discord.Interaction, error: Exception, item: discord.ui.Item[Any]
    ) -> None:
        await report_error(interaction, error)


class Confirm(FieldLensView):
    """Two buttons for the user who asked; the answer runs `on_confirm` (its reply replaces the question).

    When `on_confirm` fails (no minutes left, say), the error handler answers and the buttons keep
    working, so the user can fix the cause and press again.
    """

    def __init__(
        self,
        user_id: int,
        label: str,
        on_confirm: Callable[[discord.Interaction], Awaitable[None]],
        style: discord.ButtonStyle = discord.ButtonStyle.success,
        timeout: float = 300,
    ) -> None:
        super().__init__(timeout=timeout)
        self.user_id = user_id
        self.on_confirm = on_confirm
        self.confirm.label = label
        self.confirm.style = style
        self.answering = False

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.user_id:
            await interaction.response.send_message("Only the person who asked can answer.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        if self.answering:  # a second press while the first is answered (no await before this line)
            await interaction.response.send_message("Already on it.", ephemeral=True)
            return
        self.answering = True
        try:
            await self.on_confirm(interaction)
        finally:
            self.answering = False
        self.stop()

    @discord.ui.button(label="Cancel", style=discord.ButtonStyle.secondary)
    async def cancel(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await interaction.response.edit_message(
            content="Canceled; nothing was changed.", embed=None, view=None
        )


class StopButton(discord.ui.DynamicItem[discord.ui.Button], template=r"fieldlens:stop:(?P<job>[0-9]+)"):
    """The Stop button on a job's progress message; its id holds the job, so it works after a restart."""

    def __init__(self, job_id: int) -> None:
        super().__init__(
            discord.ui.Button(
                label="Stop", style=discord.ButtonStyle.danger, custom_id=f"fieldlens:stop:{job_id}"
            )
        )
        self.job_id = job_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> StopButton:
        return cls(int(match["job"]))

    async def callback(self, interaction: discord.Interaction) -> None:
        # discord.py logs a dynamic item's error and drops it; hand it to the error handler instead.
        try:
            await stop_job(interaction, self.job_id)
        except Exception as e:
            await report_error(interaction, e)


def stop_view(job: Job) -> discord.ui.View | None:
    if job.state.is_final:
        return None
    view = FieldLensView(timeout=None)
    view.add_item(StopButton(job.id))
    return view
