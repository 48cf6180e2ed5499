"""Serving: candidates from the model bundle, the visitor's live events, rules, fallbacks."""

from .recommendation import Recommendation

__all__ = ["Recommendation"]
