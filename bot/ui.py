"""Embeds and views: how datasets, plans, jobs and models look in Discord."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import discord

from storage.datasets import DatasetReport
from storage.domain import Job, JobState, Model
from storage.plan import Plan

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


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "--"
    s = int(seconds)
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _clip(lines: list[str], limit: int = 1000) -> str:
    text = "\n".join(lines)
    return text if len(text) <= limit else text[: limit - 2] + " …"


def dataset_embed(report: DatasetReport) -> discord.Embed:
    d = report.dataset
    e = discord.Embed(
        title=f"Dataset {d.name}",
        description=f"{d.image_count} images ({report.train_images} train / {report.val_images} validation), "
        f"{d.box_count} boxes, {report.negative_images} images without boxes.",
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
    e.set_footer(text=f"dataset #{d.id}")
    return e


def plan_embed(
    names: list[str], model: str, plan: Plan, max_minutes: int, minutes_left: float
) -> discord.Embed:
    e = discord.Embed(title="Start training?", description=plan.summary(), colour=discord.Colour.blurple())
    e.add_field(name="Datasets", value=", ".join(names))
    e.add_field(name="Model", value=model)
    e.add_field(name="Batch size", value=str(plan.batch_size))
    e.add_field(name="Steps per epoch", value=f"{plan.steps_per_epoch:.1f}")
    e.add_field(name="Epochs", value=f"{plan.epochs:.1f}")
    e.add_field(name="Estimated time", value=f"{plan.estimated_seconds / 60:.0f} min")
    e.add_field(
        name="Budget", value=f"reserves {max_minutes} min of {minutes_left:g} left; unused minutes come back"
    )
    if plan.warnings:
        e.add_field(name="Notes", value=_clip([f"- {w}" for w in plan.warnings]), inline=False)
    return e


def job_embed(job: Job, progress: dict[str, Any]) -> discord.Embed:
    e = discord.Embed(
        title=f"Job #{job.id}: {job.state}",
        description=job.description or None,
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
        e.add_field(name="Model", value=f"#{job.model_id} (`/model download model:{job.model_id}`)")
    e.set_footer(text=f"{job.model} · max {job.max_minutes} min")
    return e


def model_embed(model: Model, manifest: dict[str, Any]) -> discord.Embed:
    m = manifest["metrics"]
    e = discord.Embed(
        title=f"Model #{model.id}", description=manifest.get("verdict"), colour=discord.Colour.green()
    )
    e.add_field(name="Name", value=model.name[:200])
    e.add_field(name="Labels", value=", ".join(model.labels)[:1000])
    e.add_field(name="mAP@0.5 int8 / float", value=f"{m['map50_int8']:.3f} / {m['map50_float']:.3f}")
    e.add_field(
        name="mAP@0.5:0.95 int8 / float", value=f"{m['map50_95_int8']:.3f} / {m['map50_95_float']:.3f}"
    )
    per_class = m.get("int8", {}).get("per_class_ap50", {})
    if per_class:
        e.add_field(
            name="AP@0.5 per label (int8)",
            value=_clip([f"`{k}` {v:.3f}" for k, v in per_class.items()]),
            inline=False,
        )
    if model.parent_model_id:
        e.add_field(name="Continued from", value=f"model #{model.parent_model_id}")
    sizes = {k: f["bytes"] for k, f in manifest["files"].items()}
    e.set_footer(
        text=f"int8 {sizes.get('int8', 0) / 1e6:.2f} MB · {manifest['input_size']} px · {manifest['model']}"
    )
    return e


class Confirm(discord.ui.View):
    """Two buttons for the user who asked; the answer runs `on_confirm` (its reply replaces the question)."""

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

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        if interaction.user.id != self.user_id:
            await interaction.response.send_message("Only the person who asked can answer.", ephemeral=True)
            return False
        return True

    @discord.ui.button(label="Confirm", style=discord.ButtonStyle.success)
    async def confirm(self, interaction: discord.Interaction, button: discord.ui.Button) -> None:
        self.stop()
        await self.on_confirm(interaction)

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
        cog = interaction.client.get_cog("Train")  # type: ignore[attr-defined]
        await cog.stop_job(interaction, self.job_id)


def stop_view(job: Job) -> discord.ui.View | None:
    if job.state.is_final:
        return None
    view = discord.ui.View(timeout=None)
    view.add_item(StopButton(job.id))
    return view
