"""Who may POST to the browser-facing endpoints (events, consent): the shop's own pages.

These endpoints are exempt from the host's CSRF extension (see ``web.host_csrf``): the snippet
cannot know the shop's CSRF token. In exchange they check where a request comes from:

- ``Sec-Fetch-Site: cross-site`` is refused (unless the ``Origin`` is listed in
  ``RECS_ALLOWED_ORIGINS``);
- an ``Origin`` header, when sent, must be the shop's own origin or a listed one;
- a request carrying cookies must say where it comes from: ``Origin``, or failing that
  ``Referer``. Browsers always send ``Origin`` on a POST ``fetch`` and on ``sendBeacon``, so a
  cookie-carrying POST with neither is not one our snippet made.

A POST without cookies and without ``Origin`` (a server, curl, a mobile app) cannot act as a
logged-in visitor and is accepted. "The shop's own origin" is the request's scheme and host (as
``ProxyFix`` restores them behind a proxy) and the origin of ``RECS_PUBLIC_URL``.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import urlsplit

from flask import Request

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased, default port left out; None if it has none."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"{scheme}://{host}" if port in (None, DEFAULT_PORTS[scheme]) else f"{scheme}://{host}:{port}"


def allowed_origins(value: object) -> frozenset[str]:
    """``RECS_ALLOWED_ORIGINS`` (a list, or a space-separated string) as origins; raises
    ValueError for an entry that is not an http(s) origin such as ``https://www.shop.example``."""
    if isinstance(value, str):
        entries: list[object] = list(value.split())
    elif isinstance(value, list | tuple | set | frozenset):
        entries = list(value)
    elif value is None:
        entries = []
    else:
        raise ValueError(f"RECS_ALLOWED_ORIGINS must be a list of origins, got {type(value).__name__}")
    found = set()
    for entry in entries:
        origin = origin_of(str(entry))
        if origin is None or origin != str(entry).strip().rstrip("/").lower():
            raise ValueError(f"RECS_ALLOWED_ORIGINS: {entry!r} is not an origin like 'https://shop.example'")
        found.add(origin)
    return frozenset(found)


class Refusal(NamedTuple):
    """A refused request: a short ``kind`` (counted) and a ``reason`` (told to the client)."""

    kind: str  # cross-site | origin | no-origin | referer
    reason: str


def refusal(req: Request, public_url: str | None, allowed: frozenset[str]) -> Refusal | None:
    """Why this browser-facing POST is refused, or None when it may go on."""
    origin_header = req.headers.get("Origin")
    origin = origin_of(origin_header)
    if req.headers.get("Sec-Fetch-Site", "").strip().lower() == "cross-site" and origin not in allowed:
        return Refusal("cross-site", "cross-site request (Sec-Fetch-Site: cross-site)")
    own = {found for found in (origin_of(req.host_url), origin_of(public_url)) if found is not None}
    trusted = allowed | own
    if origin_header is not None:
        if origin in trusted:
            return None
        return Refusal("origin", f"origin {origin_header.strip()[:100]!r} is not the shop's own "
                                 "nor in RECS_ALLOWED_ORIGINS")
    if not req.headers.get("Cookie"):
        return None
    referer = req.headers.get("Referer")
    if referer is None:
        return Refusal("no-origin", "a request with cookies must send Origin or Referer")
    if origin_of(referer) in trusted:
        return None
    return Refusal("referer", "the Referer is not the shop's own page nor in RECS_ALLOWED_ORIGINS")
