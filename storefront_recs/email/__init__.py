"""Email recommendation blocks with signed click links, and campaign attribution.
The ``Recs`` mixin over these is ``extension.email``.
"""

from __future__ import annotations

from .blocks import EmailBlock, EmailItem
from .tokens import ClickToken, ClickTokens, TokenError

__all__ = ["ClickToken", "ClickTokens", "EmailBlock", "EmailItem", "TokenError"]
