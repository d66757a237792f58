"""bench/bot.py's side of the bot: a probe in the bot's process that timestamps each interaction's
stages and counts its GC pauses, and the bot in a process of its own, logged in to the fake Discord,
answering the bench's questions (its CPU time, the probe's timestamps, cProfile on and off) over a
pipe. Only the standard library at the top: the bot's process may import FieldLens from another
checkout (`--compare DIR`).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import threading
import time
from multiprocessing.connection import Connection
from typing import Any


class GcPauses:
    """The garbage collector's pauses in this process, from `install()` on."""

    def __init__(self) -> None:
        self.pauses: list[float] = []
        self._started = 0.0

    def install(self) -> None:
        import gc

        gc.callbacks.append(self._gc)

    def _gc(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        else:
            self.pauses.append(time.perf_counter() - self._started)

    def take(self) -> list[float]:
        taken, self.pauses = self.pauses, []
        return taken


class Probe:
    """Timestamps the bot takes of each interaction: when the bot's loop read its gateway frame, when
    its command's handler was called, when the handler sent its response, when that request was
    written; and its GC pauses."""

    def __init__(self) -> None:
        self.frame_at = 0.0
        self.times: dict[str, list[float]] = {}  # interaction id -> [read, called, responded, written]
        self.gc = GcPauses()

    def take(self) -> tuple[dict[str, list[float]], list[float]]:
        times, self.times = self.times, {}
        return times, self.gc.take()

    def _mark(self, interaction_id: object, stage: int) -> None:
        entry = self.times.get(str(interaction_id))
        if entry is not None:
            entry[stage] = time.perf_counter()

    def install(self) -> None:
        """Wrap the discord.py functions each stage passes through (before the bot is created)."""
        import aiohttp.client_reqrep
        import discord.gateway
        import discord.state
        from discord import app_commands
        from discord.webhook.async_ import AsyncWebhookAdapter

        probe = self
        received_message = discord.gateway.DiscordWebSocket.received_message
        parse = discord.state.ConnectionState.parse_interaction_create
        check = app_commands.CommandTree.interaction_check
        respond = AsyncWebhookAdapter.create_interaction_response
        send = aiohttp.client_reqrep.ClientRequest.send

        async def timed_received(ws: Any, msg: Any) -> None:
            probe.frame_at = time.perf_counter()
            await received_message(ws, msg)

        def timed_parse(state: Any, data: Any) -> None:
            probe.times[str(data["id"])] = [probe.frame_at, 0.0, 0.0, 0.0]
            parse(state, data)

        async def timed_check(tree: Any, interaction: Any) -> bool:
            probe._mark(interaction.id, 1)
            return await check(tree, interaction)

        def timed_respond(adapter: Any, interaction_id: int, *args: Any, **kwargs: Any) -> Any:
            probe._mark(interaction_id, 2)
            return respond(adapter, interaction_id, *args, **kwargs)

        async def timed_send(request: Any, conn: Any) -> Any:
            response = await send(request, conn)
            parts = request.url.path.split("/")
            if parts[-1] == "callback":  # .../interactions/{id}/{token}/callback
                probe._mark(parts[-3], 3)
            return response

        discord.gateway.DiscordWebSocket.received_message = timed_received  # type: ignore[method-assign]
        discord.state.ConnectionState.parse_interaction_create = timed_parse  # type: ignore[method-assign]
        app_commands.CommandTree.interaction_check = timed_check  # type: ignore[method-assign]
        AsyncWebhookAdapter.create_interaction_response = timed_respond  # type: ignore[method-assign]
        aiohttp.client_reqrep.ClientRequest.send = timed_send  # type: ignore[method-assign]
        self.gc.install()


def _answer_probe(conn: Connection, probe: Probe, bot: Any, profile: str) -> None:
    """The bench's questions to the bot's process, on a thread of their own: its CPU time so far, the
    probe's timestamps since the last question; with `profile`, cProfile on the bot's loop thread is
    turned on for each burst and off after it, and its statistics so far written to `profile`."""
    import cProfile

    profiler = cProfile.Profile()
    while True:
        try:
            question = conn.recv()
        except EOFError:
            return
        if question == "cpu":
            conn.send(time.process_time())
        elif question == "take":
            conn.send(probe.take())
        elif profile:  # "profile on" / "profile off"
            on = question == "profile on"
            bot.loop.call_soon_threadsafe(profiler.enable if on else profiler.disable)
            if not on:
                time.sleep(0.05)
                profiler.dump_stats(profile)
            conn.send(None)
        else:
            conn.send(None)


def serve_bot(
    settings: dict[str, Any], base: str, gateway: str, conn: Connection, code: str, profile: str
) -> None:
    """The bot in a process of its own, as in production, logged in to the fake Discord."""
    if code:
        sys.path.insert(0, code)
    import discord
    import yarl

    from storage.settings import Settings

    probe = Probe()
    probe.install()
    from bot.client import FieldLensBot

    discord.http.Route.BASE = base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    async def serve() -> None:
        bot = FieldLensBot(Settings(**settings), sync=True, guild_ready_timeout=0.1)
        threading.Thread(target=_answer_probe, args=(conn, probe, bot, profile), daemon=True).start()
        await bot.start("fake-token")

    asyncio.run(serve())


class LocalProbe:
    """The probe when the bot shares this process (`--same-process`): its CPU is the fake's."""

    def __init__(self) -> None:
        self.probe = Probe()
        self.probe.install()

    def cpu(self) -> float | None:
        return None

    def take(self) -> tuple[dict[str, list[float]], list[float]]:
        return self.probe.take()

    def profile(self, on: bool) -> None:
        pass


class RemoteProbe:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def cpu(self) -> float | None:
        self.conn.send("cpu")
        return float(self.conn.recv())

    def take(self) -> tuple[dict[str, list[float]], list[float]]:
        self.conn.send("take")
        return self.conn.recv()  # type: ignore[no-any-return]

    def profile(self, on: bool) -> None:
        self.conn.send("profile on" if on else "profile off")
        self.conn.recv()


def start_separate(
    world: Any, settings: dict[str, Any], code: str, profile: str, guilds: Any = None
) -> tuple[Any, RemoteProbe]:
    """The fake Discord on this process's loop, the bot in a child process: the fake's work (Discord's,
    in production) is not on the bot's CPU, and the bot's loop serves only the bot. `guilds`: another
    fake's two servers, so that a second bot serves the same teams."""

    async def fake() -> None:
        await world.fake.start()
        if guilds is None:
            world.team_a = world.fake.add_guild("Team A", roles=["builders"])
            world.team_b = world.fake.add_guild("Team B")
        else:
            world.team_a, world.team_b = guilds
            world.fake.guilds.update({g.id: g for g in guilds})

    world.run(fake())
    base = world.fake.base
    ours, theirs = multiprocessing.Pipe()
    process = multiprocessing.get_context("spawn").Process(
        target=serve_bot,
        args=(settings, f"{base}/api/v10", f"ws://127.0.0.1:{world.fake.port}/", theirs, code, profile),
        name="fieldlens-bot",
    )
    process.start()
    world.wait(lambda: world.fake.identifies and world.fake.sockets, 120, "the bot to log in")
    time.sleep(1.0)  # its guild cache fills from GUILD_CREATE
    return process, RemoteProbe(ours)
