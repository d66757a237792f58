"""The FieldLens Discord bot: cogs, the progress notifier, the web server, command sync.

It never imports TensorFlow: it writes job rows and reads back their states and events, and a worker
process (embedded by `fieldlens bot`, or `fieldlens worker` elsewhere) does the training.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

import discord
from aiohttp import web
from discord.ext import commands

from bot.cogs import EXTENSIONS
from bot.links import LinkSigner
from bot.notifier import Notifier
from bot.ui import StopButton
from bot.web import AccessLogger, make_app
from storage.services import Services, open_services
from storage.settings import Settings

log = logging.getLogger(__name__)


class FieldLensBot(commands.Bot):
    def __init__(self, settings: Settings, sync: bool = True, **options: Any) -> None:
        intents = discord.Intents.none()
        intents.guilds = True  # no privileged intents: slash commands need none
        super().__init__(
            command_prefix=commands.when_mentioned, intents=intents, help_command=None, **options
        )
        self.settings = settings
        self.sync_commands = sync
        self.services: Services = open_services(settings)  # used on the event loop's thread only
        self.signer = LinkSigner.from_settings(settings)
        self.notifier = Notifier(self)
        self.web_runner: web.AppRunner | None = None
        self.web_port: int | None = None

    async def setup_hook(self) -> None:
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self.add_dynamic_items(StopButton)
        await self._start_web()
        if self.sync_commands:
            if self.settings.dev_guild_id:
                guild = discord.Object(self.settings.dev_guild_id)
                self.tree.copy_global_to(guild=guild)
                synced = await self.tree.sync(guild=guild)
            else:
                synced = await self.tree.sync()
            log.info("synced %s slash commands", len(synced))
        self.notifier.start()

    async def _start_web(self) -> None:
        self.web_runner = web.AppRunner(
            make_app(self.services.models, self.signer, self.services), access_log_class=AccessLogger
        )
        await self.web_runner.setup()
        site = web.TCPSite(self.web_runner, self.settings.web_host, self.settings.web_port)
        await site.start()
        self.web_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("web server on %s:%s", self.settings.web_host, self.web_port)

    def page(self, team: str, path: str) -> str:
        """A fresh signed link to one of the team's pages ("/jobs/7", "/models/3", "/dashboard")."""
        return self.signer.page_url(team, path)

    async def on_ready(self) -> None:
        log.info("logged in as %s in %s server(s)", self.user, len(self.guilds))
        # What is alive now (modules, cogs, templates, the guild cache) lives as long as the bot: keep
        # it out of every later garbage collection. A full collection of it stopped the event loop for
        # 50 ms and more, in the middle of whatever commands were waiting (bench/bot.py's GC pauses).
        gc.collect()
        gc.freeze()

    async def close(self) -> None:
        self.notifier.stop()
        if self.web_runner is not None:
            await self.web_runner.cleanup()
        await super().close()
        self.services.close()
