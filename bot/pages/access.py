"""Who is looking: the team a signed page link opens, and the links a page renders for it.

A page link's query (`team`, `expires`, `sig`; bot/links.py) is checked on every request: tampered
or expired answers 403 with what to do. The links a page renders carry the same query, so they
expire with the link that opened the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from aiohttp import web

from bot.links import LinkSigner
from bot.pages.reader import PageReader
from storage.services import Services

SERVICES_KEY = web.AppKey("page_services", Services)
SIGNER_KEY = web.AppKey("page_signer", LinkSigner)
READER_KEY = web.AppKey("page_reader", PageReader)

EXPIRED = (
    "This page link is invalid or has expired. Ask the bot for a new one with /fieldlens dashboard "
    "(or `fieldlens dashboard` on the server)."
)


@dataclass(frozen=True)
class Viewer:
    """A team member holding a valid page link."""

    team: str
    expires: int
    sig: str

    @property
    def query(self) -> str:
        """team=&expires=&sig=, as the link carried them."""
        return urlencode({"team": self.team, "expires": self.expires, "sig": self.sig})

    def link(self, path: str, **params: object) -> str:
        """`path` with the viewer's signed query (and `params`, None ones left out)."""
        extra = urlencode({k: v for k, v in params.items() if v is not None and v != ""})
        return f"{path}?{self.query}" + (f"&{extra}" if extra else "")

    @property
    def expires_at(self) -> datetime:
        return datetime.fromtimestamp(self.expires, UTC)


def viewer(request: web.Request) -> Viewer:
    """The viewer of a page request, or 403."""
    q = request.query
    team, expires, sig = q.get("team", ""), q.get("expires", ""), q.get("sig", "")
    signer = request.app.get(SIGNER_KEY)
    if signer is None or not signer.check_page(team, expires, sig):
        raise web.HTTPForbidden(text=EXPIRED)
    return Viewer(team, int(expires), sig)


def services(request: web.Request) -> Services:
    """The storage of the server's event loop (use it on the loop only)."""
    return request.app[SERVICES_KEY]


def reader(request: web.Request) -> PageReader:
    """The pages' thread, with a storage of its own (reader.py)."""
    return request.app[READER_KEY]


def object_id(request: web.Request, key: str) -> int:
    """A numeric id from the path; anything else is a missing page."""
    try:
        return int(request.match_info[key])
    except ValueError:
        raise web.HTTPNotFound(text="No such page.") from None
