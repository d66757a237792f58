"""Keeps each team informed about the jobs it started from Discord.

Every few seconds, for each job with a progress message that is not done:
    - edit the progress message (state, a bar of steps, training time, ETA, loss, mAP) when something
      happened; through the interaction's webhook while its token lives (15 minutes), then through
      the channel with the bot's own token
    - post every state change to the team's channel (or where the job was started), one event at a
      time, recording each as it is posted; on SUCCEEDED or STOPPED also the metrics, the plots and
      the model files (or signed links when they are over the server's upload limit)
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import discord

from bot.ui import job_embed, model_embed, stop_view
from storage.domain import Job, JobEvent, JobState
from storage.models import EDGE_FILES
from storage.notices import Notice

if TYPE_CHECKING:
    from bot.client import FieldLensBot

log = logging.getLogger(__name__)
RESULT_FILES = tuple(EDGE_FILES.values())  # the int8 model and labels.txt
DEFAULT_UPLOAD_LIMIT = 10 * 1024 * 1024


class Notifier:
    def __init__(self, bot: FieldLensBot) -> None:
        self.bot = bot
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="fieldlens-notifier")

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        await self.bot.wait_until_ready()
        while not self.bot.is_closed():
            try:
                await self.tick()
            except Exception:
                log.exception("notifier tick failed; trying again")
            await asyncio.sleep(self.bot.settings.notify_seconds)

    async def tick(self) -> None:
        for notice in self.bot.services.notices.pending():
            try:
                await self.update(notice)
            except discord.HTTPException as e:
                log.warning("could not update job #%s in Discord (%s); will retry", notice.job_id, e)

    async def update(self, notice: Notice) -> None:
        jobs = self.bot.services.jobs
        events = jobs.events(notice.job_id, after=notice.announced_event_id)
        if not events:
            return
        job = jobs.get_any(notice.job_id)
        try:
            await self.edit_progress(notice, job)
        except (discord.NotFound, discord.Forbidden) as e:  # message deleted, channel hidden: announce anyway
            log.info("progress message of job #%s cannot be edited (%s)", job.id, e.status)
        for event in events:
            if event.kind == "state":
                await self.announce(notice, job, event)
            self.bot.services.notices.announced(job.id, event.id)
            if event.state is not None and event.state.is_final:
                self.bot.services.notices.done(job.id)  # only once its final state was posted

    async def edit_progress(self, notice: Notice, job: Job) -> None:
        if notice.message_id is None:
            return
        embed = job_embed(job, self.bot.services.jobs.last_progress(job.id))
        view = stop_view(job)
        if notice.token_valid() and notice.application_id:
            webhook = discord.Webhook.partial(
                notice.application_id, notice.interaction_token or "", client=self.bot
            )
            try:
                await webhook.edit_message(notice.message_id, embed=embed, view=view)
                return
            except (discord.NotFound, discord.Forbidden, discord.HTTPException) as e:
                if isinstance(e, discord.HTTPException) and e.status >= 500:
                    raise
                log.info(
                    "interaction token of job #%s no longer works (%s); using the channel", job.id, e.status
                )
                self.bot.services.notices.expire_token(job.id)
        if notice.channel_id is not None:
            message = self.bot.get_partial_messageable(notice.channel_id).get_partial_message(
                notice.message_id
            )
            await message.edit(embed=embed, view=view)

    def _channel(self, notice: Notice, job: Job) -> discord.PartialMessageable | None:
        team = self.bot.services.teams.get(job.team_id)
        channel_id = team.channel_id or notice.channel_id
        return self.bot.get_partial_messageable(channel_id) if channel_id else None

    async def announce(self, notice: Notice, job: Job, event: JobEvent) -> None:
        channel = self._channel(notice, job)
        if channel is None:
            return
        reason = event.data.get("reason") or event.data.get("device") or ""
        text = f"Job #{job.id}{f' ({job.description})' if job.description else ''} is now **{event.state}**."
        if event.state == JobState.FAILED and job.error:
            text += f"\n{job.error}"
        elif reason and event.state not in (JobState.SUCCEEDED, JobState.STOPPED):
            text += f" {reason}"
        if (
            event.state in (JobState.SUCCEEDED, JobState.STOPPED)
            and job.model_id
            and event.id == self._last_state(job)
        ):
            await self._results(channel, job, text)
        else:
            await channel.send(text, allowed_mentions=discord.AllowedMentions.none())

    def _last_state(self, job: Job) -> int:
        return self.bot.services.jobs.events(job.id, kinds=("state",))[-1].id

    async def _results(self, channel: discord.PartialMessageable, job: Job, text: str) -> None:
        model = self.bot.services.models.get(job.team_id, job.model_id)  # type: ignore[arg-type]
        folder = Path(model.path)
        manifest = json.loads((folder / "manifest.json").read_text())
        files = [
            discord.File(folder / name)
            for name in ("curves.png", "predictions.png")
            if (folder / name).exists()
        ]
        guild = self.bot.get_guild(int(job.team_id)) if job.team_id.isdigit() else None
        limit = guild.filesize_limit if guild else DEFAULT_UPLOAD_LIMIT
        model_bytes = sum((folder / n).stat().st_size for n in RESULT_FILES)
        used = sum((folder / f.filename).stat().st_size for f in files if f.filename)
        if model_bytes + used <= limit:
            files += [discord.File(folder / name) for name in RESULT_FILES]
        else:
            links = [f"[{n}]({self.bot.signer.url(job.team_id, model.id, n)})" for n in RESULT_FILES]
            text += f"\nModel files (links expire in {self.bot.settings.link_minutes} min): " + ", ".join(
                links
            )
        with contextlib.ExitStack() as stack:
            for f in files:
                stack.callback(f.close)
            await channel.send(
                text,
                embed=model_embed(model, manifest),
                files=files,
                allowed_mentions=discord.AllowedMentions.none(),
            )
