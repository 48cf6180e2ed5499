"""Keep the shop's CSRF extension off our blueprint, whichever the shop uses and whenever it
initialises it.

The snippet's POSTs (events, consent) cannot carry the shop's CSRF token, and the admin
dashboard's forms carry their own (``web.admin``). So every view of the blueprint is exempted
in each known extension: Flask-WTF's ``CSRFProtect`` (found in ``app.extensions["csrf"]``) and
Flask-SeaSurf (found by its ``before_request`` hook; it registers nowhere else). This happens
when ``Recs`` is initialised (for an extension initialised before us) and again at the first
request (for one initialised after us: its hook runs after ours, so the exemption is in place
in time). The browser-facing POSTs check their origin instead (``web.origin``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from flask import Flask

BLUEPRINT = "storefront_recs"


def our_views(app: Flask) -> list[Callable[..., Any]]:
    """Every view function of the blueprint and of the blueprints nested in it."""
    return [view for endpoint, view in app.view_functions.items() if endpoint.startswith(BLUEPRINT + ".")]


def host_csrf_extensions(app: Flask) -> Iterator[Any]:
    """The CSRF extensions initialised on ``app`` so far (Flask-WTF, Flask-SeaSurf)."""
    wtf = app.extensions.get("csrf")
    if wtf is not None and callable(getattr(wtf, "exempt", None)):
        yield wtf
    seen = {id(wtf)}
    for hook in app.before_request_funcs.get(None, []):
        owner = getattr(hook, "__self__", None)
        if owner is not None and id(owner) not in seen and _is_seasurf(owner):
            seen.add(id(owner))
            yield owner


def _is_seasurf(owner: Any) -> bool:
    try:
        from flask_seasurf import SeaSurf
    except ImportError:
        return False
    return isinstance(owner, SeaSurf)


def exempt_our_views(app: Flask) -> int:
    """Exempt the blueprint's views in every CSRF extension found; returns how many were found."""
    views = our_views(app)
    found = 0
    for extension in host_csrf_extensions(app):
        found += 1
        for view in views:
            extension.exempt(view)  # by "module.name": idempotent, and the same in every version
    return found


def install(app: Flask) -> None:
    """Exempt now, and once more at the first request (after that the hook does nothing)."""
    exempt_our_views(app)
    done = False

    def exempt_at_first_request() -> None:
        nonlocal done
        if not done:
            exempt_our_views(app)
            done = True

    app.before_request(exempt_at_first_request)
