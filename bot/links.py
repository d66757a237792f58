"""Signed, expiring download links for model files too large for a Discord attachment."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import urlencode


class LinkSigner:
    def __init__(self, secret: bytes, base_url: str, minutes: int) -> None:
        self.secret, self.base_url, self.minutes = secret, base_url.rstrip("/"), minutes

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
        good = hmac.compare_digest(self._sig(team, model_id, name, when), sig)
        return good and when >= time.time()
