"""`/dataset upload url:`: stream a zip from a link to disk, with a size cap and a time limit.

Only http and https; hosts that resolve to private, loopback, link-local or otherwise non-public
addresses are refused (the bot must not become a way into its own network).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from storage.errors import UserError

CHUNK = 1 << 16


class DownloadRefused(UserError):
    """The link cannot or may not be downloaded."""


async def _check_host(host: str, port: int, allow_private: bool) -> None:
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise DownloadRefused(f"The host {host!r} of that link could not be found. Check the link.") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global and not allow_private:
            raise DownloadRefused(
                "That link points to a private or local address, which FieldLens does not fetch. "
                "Put the zip on a public web server and give its direct download link: one that answers "
                "with the zip itself, not a redirect or a login page (so not a Google Drive or Dropbox "
                "share page)."
            )


async def fetch_to_file(
    url: str, dest: Path, max_bytes: int, timeout: float, allow_private: bool = False
) -> int:
    """Download `url` to `dest`; returns the size. Partial files are removed on any failure."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DownloadRefused("Give an http:// or https:// link to the zip.")
    await _check_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), allow_private)
    size = 0
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session,
            session.get(url.strip(), allow_redirects=False) as response,
        ):
            if response.status != 200:
                raise DownloadRefused(
                    f"The link answered HTTP {response.status}. Use a direct download link to the zip "
                    "(one that does not redirect or need a login)."
                )
            if (response.content_length or 0) > max_bytes:
                raise DownloadRefused(_too_big(max_bytes))
            with open(dest, "wb") as f:
                async for chunk in response.content.iter_chunked(CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise DownloadRefused(_too_big(max_bytes))
                    f.write(chunk)
    except TimeoutError:
        dest.unlink(missing_ok=True)
        raise DownloadRefused(f"The download took longer than {timeout:.0f} s. Try a faster host.") from None
    except aiohttp.ClientError as e:
        dest.unlink(missing_ok=True)
        raise DownloadRefused(f"The download failed ({e.__class__.__name__}). Check the link.") from None
    except BaseException:
        dest.unlink(missing_ok=True)
        raise
    return size


def _too_big(max_bytes: int) -> str:
    return f"The file is larger than {max_bytes / 1e6:.0f} MB, the most FieldLens accepts for a dataset."
