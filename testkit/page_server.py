"""The bot's web server (pages included) on 127.0.0.1, on a thread of its own with its own storage
(SQLite connections belong to one thread), for page tests with plain requests and a real browser,
and for bench/screenshots.py."""

from __future__ import annotations

import asyncio
import threading
import time
from urllib.parse import urlsplit

from aiohttp import web

from bot.links import LinkSigner
from bot.web import AccessLogger, make_app
from storage.services import Services, open_services
from storage.settings import Settings

SECRET = b"page-tests-secret"


class PageServer:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.signer = LinkSigner(SECRET, "http://127.0.0.1:0", 60, page_minutes=60)
        self.loop = asyncio.new_event_loop()
        self.services: Services | None = None
        ready = threading.Event()

        async def start() -> None:
            self.services = open_services(settings)
            app = make_app(self.services.models, self.signer, self.services)
            self.runner = web.AppRunner(app, access_log_class=AccessLogger)
            await self.runner.setup()
            site = web.TCPSite(self.runner, "127.0.0.1", 0)
            await site.start()
            self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"  # type: ignore[union-attr]
            self.signer.base_url = self.url
            ready.set()

        self.thread = threading.Thread(
            target=lambda: (self.loop.run_until_complete(start()), self.loop.run_forever()), daemon=True
        )
        self.thread.start()
        assert ready.wait(20), "the page server did not start"

    def link(self, team: str, path: str, expires: int | None = None) -> str:
        return self.signer.page_url(team, path, expires)

    def path_of(self, url: str) -> str:
        parts = urlsplit(url)
        return f"{parts.path}?{parts.query}"

    def expired_link(self, team: str, path: str) -> str:
        return self.link(team, path, expires=int(time.time()) - 5)

    def close(self) -> None:
        async def stop() -> None:
            await self.runner.cleanup()
            if self.services is not None:
                self.services.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
