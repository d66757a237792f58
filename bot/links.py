"""Signed, expiring links: downloads of model files too large for a Discord attachment, and a team's
pages (bot/pages/). Both are HMACs of (team, object id, name, expiry) with the one web secret.

A page link signs the team and its expiry only (object id 0, name `PAGES`): it opens every page of
that team until it expires, so the links a page renders keep the expiry of the link that opened it,
and an id of another team's object answers 404, like a missing one.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from urllib.parse import urlencode

from storage.settings import Settings

PAGES = "pages"  # the name a page link signs (no model file has this name)


class LinkSigner:
    def __init__(self, secret: bytes, base_url: str, minutes: int, page_minutes: int = 7 * 24 * 60) -> None:
        self.secret, self.base_url, self.minutes = secret, base_url.rstrip("/"), minutes
        self.page_minutes = page_minutes

    @classmethod
    def from_settings(cls, settings: Settings) -> LinkSigner:
        """The signer of a web server: `FIELDLENS_WEB_SECRET`, else a random key (links die on restart)."""
        secret = (
            settings.web_secret.get_secret_value().encode()
            if settings.web_secret
            else secrets.token_bytes(32)
        )
        return cls(secret, settings.public_url, settings.link_minutes, settings.page_link_minutes)

    def _sig(self, team: str, model_id: int, name: str, expires: int) -> str:
        message = f"{team}\n{model_id}\n{name}\n{expires}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()

    def url(self, team: str, model_id: int, name: str, now: float | None = None) -> str:
        expires = int((now or time.time()) + self.minutes * 60)
        query = urlencode({"team": team, "expires": expires, "sig": self._sig(team, model_id, name, expires)})
        return f"{self.base_url}/download/{model_id}/{name}?{query}"

    def check(self, team: str, model_id: int, name: str, expires: str, sig: str) -> bool:
        try:
            when = int(expires)
        except ValueError:
            return False
        good = hmac.compare_digest(self._sig(team, model_id, name, when).encode(), sig.encode())
        return good and when >= time.time()

    # -- pages -------------------------------------------------------------------------------------

    def page_query(self, team: str, expires: int | None = None, now: float | None = None) -> str:
        """`team=&expires=&sig=`: opens the team's pages until `expires` (default: `page_minutes` on)."""
        when = expires if expires is not None else int((now or time.time()) + self.page_minutes * 60)
        return urlencode({"team": team, "expires": when, "sig": self._sig(team, 0, PAGES, when)})

    def page_url(self, team: str, path: str, expires: int | None = None) -> str:
        """A fresh signed link to one of the team's pages: `path` is "/dashboard", "/jobs/7"..."""
        return f"{self.base_url}{path}?{self.page_query(team, expires)}"

    def check_page(self, team: str, expires: str, sig: str) -> bool:
        return bool(team) and self.check(team, 0, PAGES, expires, sig)
