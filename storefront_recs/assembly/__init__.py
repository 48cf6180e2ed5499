"""The assembly point: the per-app state that builds the parts once and hands them down."""

from .state import EXTENSION_KEY, RecsState, current_state, state_of

__all__ = ["EXTENSION_KEY", "RecsState", "current_state", "state_of"]
