"""The real FieldLens bot (discord.py) logged in to the fake Discord, both in one background event loop.

Used by the bot tests (through the `world` fixture in tests/bot/conftest.py) and by bench/bot.py.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import Any, TypeVar

import discord
import yarl

from storage.settings import Settings
from testkit.fake_discord import FakeDiscord, Guild

T = TypeVar("T")


class World:
    """A fake Discord with two servers (teams), and the bot logged in to it."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="discord-world", daemon=True)
        self.thread.start()
        self.fake = FakeDiscord()
        self.bot: Any = None
        self._saved = (discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY)

    def run(self, coro: Awaitable[T], timeout: float = 60) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def call(self, fn: Callable[[], T]) -> T:
        """Run a plain function on the bot's loop thread (the bot's database connection lives there)."""

        async def wrapper() -> T:
            return fn()

        return self.run(wrapper())

    async def _start_fake(self) -> None:
        await self.fake.start()
        self.team_a: Guild = self.fake.add_guild("Team A", roles=["builders"])
        self.team_b: Guild = self.fake.add_guild("Team B")
        discord.http.Route.BASE = f"{self.fake.base}/api/v10"
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(f"ws://127.0.0.1:{self.fake.port}/")

    async def start_bot(self) -> None:
        from bot.client import FieldLensBot

        self.bot = FieldLensBot(self.settings, sync=True, guild_ready_timeout=0.1)
        await self.bot.login("fake-token")
        self._connect = asyncio.create_task(self.bot.connect(reconnect=True))
        await self.fake.wait_for(self.bot.is_ready, 30, "the bot to be ready")
        await self.fake.wait_for(lambda: self.bot.get_guild(int(self.team_a.id)), 10, "guild cache")

    async def stop_bot(self) -> None:
        await self.bot.close()
        await asyncio.wait_for(self._connect, 10)

    def start(self) -> None:
        self.run(self._start_fake())
        self.run(self.start_bot())

    def close(self) -> None:
        try:
            self.run(self.stop_bot())
            self.run(self.fake.stop())
        finally:
            discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = self._saved
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)

    # -- driving it ----------------------------------------------------------------------------

    def slash(self, command: str, guild: Guild | None = None, wait: str = "response", **kwargs: Any) -> Any:
        """Send a slash command and wait for its first response (or, with wait='done', a follow-up)."""
        interaction = self.run(self.fake.slash(command, guild=guild, **kwargs))
        self.wait_answer(interaction, wait)
        return interaction

    def press(self, message: dict[str, Any], custom_id: str, guild: Guild, **kwargs: Any) -> Any:
        interaction = self.run(self.fake.press(message, custom_id, guild, **kwargs))
        self.wait_answer(interaction, "response")
        return interaction

    def wait_answer(self, interaction: Any, wait: str = "response", timeout: float = 60) -> None:
        def answered() -> bool:
            if wait == "done":  # a final answer: a follow-up after a defer, or a direct reply
                return bool(interaction.followups) or any(c["type"] != 5 for c in interaction.callbacks)
            return bool(interaction.callbacks)

        self.run(
            self.fake.wait_for(answered, timeout, f"an answer to interaction {interaction.id}"), timeout + 5
        )

    def wait(self, check: Callable[[], Any], timeout: float = 60, what: str = "") -> Any:
        return self.run(self.fake.wait_for(check, timeout, what), timeout + 5)
