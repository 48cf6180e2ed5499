"""Email recommendation blocks with signed click links, and campaign attribution.

``EmailAPI`` (the ``Recs`` mixin) is imported lazily, like ``privacy.PrivacyAPI``: it needs
``core``, and nothing here may import ``core`` while it is being imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .blocks import EmailBlock, EmailItem
from .tokens import ClickToken, ClickTokens, TokenError

if TYPE_CHECKING:
    from .api import EmailAPI as EmailAPI


def __getattr__(name: str) -> Any:
    if name == "EmailAPI":
        from .api import EmailAPI

        return EmailAPI
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["ClickToken", "ClickTokens", "EmailAPI", "EmailBlock", "EmailItem", "TokenError"]
