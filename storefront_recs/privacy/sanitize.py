"""What is left of an event's context before it is stored (data minimisation).

- ``page``: the path only; scheme, host, query string and fragment are dropped (query strings
  carry emails, reset tokens, campaign ids);
- ``referrer``: the origin only (``https://www.google.com``); dropped when the host is an IP
  address or the value is not an absolute http(s) URL;
- every other text field (``query``, ``widget``, ...): email addresses become ``[email]`` and IP
  addresses ``[ip]``; the same masking applies to the page path.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import unquote, urlsplit

EMAIL_MASK = "[email]"
IP_MASK = "[ip]"

EMAIL_RE = re.compile(r"[A-Za-z0-9._%+\-]+(?:@|%40)[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
# Candidate IP literals (IPv4 with an optional port, IPv6); each is confirmed with ``ipaddress``.
IPV4_RE = re.compile(r"(?<![\w.])(\d{1,3}(?:\.\d{1,3}){3})(?![\w.])")
IPV6_RE = re.compile(r"(?<![\w.:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w.:])")

URL_FIELDS = ("page", "referrer")


def _mask_ip(match: re.Match[str]) -> str:
    text = match.group(0)
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return text
    return IP_MASK


def mask_personal(text: str) -> str:
    """``text`` with email addresses and IP addresses masked."""
    masked = EMAIL_RE.sub(EMAIL_MASK, text)
    masked = IPV4_RE.sub(_mask_ip, masked)
    return IPV6_RE.sub(_mask_ip, masked)


def sanitize_page(url: str) -> str:
    """The path of a page URL, masked; query string and fragment dropped."""
    return mask_personal(unquote(urlsplit(url.strip()).path))


def sanitize_referrer(url: str) -> str | None:
    """The origin of a referrer URL, or None when there is no safe origin to keep."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not host:
        return None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return None
    origin = f"{parts.scheme}://{host}"
    return f"{origin}:{port}" if port else origin


def sanitize_context(context: dict[str, Any]) -> dict[str, Any]:
    """A copy of an event context that keeps nothing identifying (see the module docstring)."""
    clean: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, str):
            if key == "page":
                value = sanitize_page(value)
            elif key == "referrer":
                value = sanitize_referrer(value)
            else:
                value = mask_personal(value)
        if value is not None:
            clean[key] = value
    return clean
