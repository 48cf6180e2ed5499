"""Where links in emails point, and where a click may be redirected.

A click is only ever redirected to a path on the shop, or to an absolute http(s) URL on the
host of ``RECS_PUBLIC_URL``: catalogue URLs to other hosts, scheme-relative (``//evil``),
backslash tricks (``/\\evil``), ``javascript:`` and the like are refused.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

# Anything a browser would strip or reinterpret inside a URL: controls, spaces, backslashes.
UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
UTM_KEY = re.compile(r"^utm_[a-z0-9_]{1,32}$")
MAX_UTM_VALUE = 200
MAX_UTM_KEYS = 10


def public_base(public_url: str) -> str:
    """``RECS_PUBLIC_URL`` without a trailing slash, checked to be an absolute http(s) URL."""
    parts = urlsplit(public_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"RECS_PUBLIC_URL must be an absolute http(s) URL, got {public_url!r}")
    return public_url.strip().rstrip("/")


def shop_target(url: str | None, public_url: str) -> str | None:
    """The redirect target for a catalogue ``url``: a path on the shop (``/p/sku-1``) or an
    absolute URL on the public host; None when the URL could lead anywhere else."""
    if not url or UNSAFE_CHARS.search(url.strip()):
        return None
    url = url.strip()
    try:
        parts = urlsplit(url)
        shop = urlsplit(public_url)
        port, shop_port = parts.port, shop.port
    except ValueError:
        return None
    if not parts.scheme and not parts.netloc:
        # A same-shop path: must start with one "/" (no "//host", no relative "evil.example").
        return url if url.startswith("/") and not url.startswith("//") else None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or parts.username is not None:
        return None
    same_host = parts.hostname == shop.hostname and port in (None, shop_port)
    return url if same_host else None


def absolute(url: str | None, public_url: str) -> str | None:
    """An absolute http(s) URL for an email (images, item links), or None when unusable."""
    if not url or UNSAFE_CHARS.search(url := url.strip()):
        return None
    if url.startswith("/") and not url.startswith("//"):
        return _origin(public_url) + url  # the common case, without urljoin's cost
    joined = urljoin(public_url + "/", url)
    parts = urlsplit(joined)
    return joined if parts.scheme in ("http", "https") and parts.netloc else None


@functools.lru_cache(maxsize=8)
def _origin(public_url: str) -> str:
    parts = urlsplit(public_url)
    return f"{parts.scheme}://{parts.netloc}"


def utm_params(utm: Mapping[str, object] | None) -> dict[str, str]:
    """UTM parameters for the landing page; ``source`` is short for ``utm_source``."""
    params: dict[str, str] = {}
    for key, value in (utm or {}).items():
        name = key if key.startswith("utm_") else f"utm_{key}"
        if not UTM_KEY.match(name) or value is None:
            raise ValueError(f"not a UTM parameter: {key!r}")
        params[name] = str(value)[:MAX_UTM_VALUE]
    return params


def forwarded_utm(query: Mapping[str, str]) -> dict[str, str]:
    """The UTM parameters of a click link's query string (nothing else is ever forwarded)."""
    found = {k: v[:MAX_UTM_VALUE] for k, v in query.items() if UTM_KEY.match(k)}
    return dict(sorted(found.items())[:MAX_UTM_KEYS])


def with_query(url: str, params: Mapping[str, str]) -> str:
    """``url`` with ``params`` added to its query string (the path and host untouched)."""
    if not params:
        return url
    parts = urlsplit(url)
    query = "&".join(filter(None, [parts.query, urlencode(params)]))
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
