"""A small MJPEG HTTP stream with the boxes drawn, and a page to watch it, for tuning on the field.

Routes: `/` (a page), `/stream` (multipart/x-mixed-replace JPEG frames), `/detections` (the last
frame's JSON record). The server runs on its own thread and event loop; `write()` only swaps in the
newest frame, so a slow viewer never slows detection down.
"""

from __future__ import annotations

import asyncio
import html
import logging
import threading
from collections.abc import Sequence

from aiohttp import web

from edge.detection import Detection
from edge.draw import annotate, jpeg
from edge.outputs import frame_record
from edge.sources import Frame

log = logging.getLogger(__name__)

PAGE = """<!doctype html><html><head><title>FieldLens</title><style>
body{background:#111;color:#eee;font-family:sans-serif;margin:1em}img{max-width:100%;border:1px solid #444}
</style></head><body><h3>FieldLens live detections</h3><p>{caption}</p><img src="/stream" alt="stream">
<pre id="d"></pre><script>
setInterval(async()=>{const r=await fetch('/detections');document.getElementById('d').textContent=
JSON.stringify(await r.json(),null,1)},1000)</script></body></html>"""
BOUNDARY = "fieldlensframe"


class MJPEGServer:
    def __init__(
        self,
        host: str = "0.0.0.0",  # noqa: S104 - viewers are on the robot LAN
        port: int = 8080,
        caption: str = "",
    ) -> None:
        """`caption`: a line shown above the stream (`fieldlens-edge run` shows the score thresholds)."""
        self.host, self.port = host, port
        self.page = PAGE.replace("{caption}", html.escape(caption))
        self._jpeg: bytes | None = None
        self._record: dict = {}
        self._stopping = False
        self._changed: asyncio.Condition | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._serve, name="mjpeg", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("the MJPEG server did not start")

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._start())
        self._ready.set()
        self._loop.run_forever()

    async def _start(self) -> None:
        self._changed = asyncio.Condition()
        app = web.Application()
        app.router.add_get("/", self._page)
        app.router.add_get("/stream", self._stream)
        app.router.add_get("/detections", self._detections)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        log.info("serving the annotated stream on http://%s:%s/", self.host, self.port)

    async def _page(self, _request: web.Request) -> web.Response:
        return web.Response(text=self.page, content_type="text/html")

    async def _detections(self, _request: web.Request) -> web.Response:
        return web.json_response(self._record)

    async def _stream(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": f"multipart/x-mixed-replace; boundary={BOUNDARY}"}
        )
        await response.prepare(request)
        assert self._changed is not None
        last: bytes | None = None
        while True:
            async with self._changed:
                while not self._stopping and (self._jpeg is None or self._jpeg is last):
                    await self._changed.wait()
                if self._stopping:
                    return response
                last = self._jpeg
            assert last is not None
            await response.write(
                f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(last)}\r\n\r\n".encode()
                + last
                + b"\r\n"
            )

    async def _publish(self, data: bytes, record: dict) -> None:
        assert self._changed is not None
        async with self._changed:
            self._jpeg, self._record = data, record
            self._changed.notify_all()

    def write(self, frame: Frame, detections: Sequence[Detection], latency_ms: float | None) -> None:
        if frame.image is None:
            return
        data = jpeg(annotate(frame.image, detections))
        record = frame_record(frame, detections, latency_ms)
        asyncio.run_coroutine_threadsafe(self._publish(data, record), self._loop).result(5)

    async def _stop_streams(self) -> None:
        assert self._changed is not None
        async with self._changed:
            self._stopping = True
            self._changed.notify_all()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop_streams(), self._loop).result(5)
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
