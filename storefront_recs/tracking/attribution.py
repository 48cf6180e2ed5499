"""Last-click attribution, shared by experiment results, the dashboard's funnels and email reports.

A conversion (an add-to-cart, a purchase line) is credited to the label (a variant, a widget, an
email campaign) of the latest click by the same person within the attribution window, and to
nothing when there is no such click. Feed clicks and conversions in time order: a click replaces
the person's previous one, so the latest click is the one before the conversion.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from datetime import datetime, timedelta
from typing import Generic, TypeVar

Label = TypeVar("Label")


class LastClick(Generic[Label]):
    """The latest click per person; ``credit`` names what a conversion is credited to.

    A person may be known under several keys at once (a user key and a browser's anonymous id):
    a click is recorded under each, and a conversion looks under each for the latest click.
    """

    def __init__(self, window: timedelta) -> None:
        self.window = window
        self._last: dict[Hashable, tuple[datetime, Label]] = {}

    def click(self, people: Iterable[Hashable | None], ts: datetime, label: Label) -> None:
        """A click at ``ts`` on something labelled ``label``, by the person known under ``people``
        (None keys ignored); it is the latest click of each of them."""
        for person in people:
            if person is not None:
                self._last[person] = (ts, label)

    def credit(self, people: Iterable[Hashable | None], ts: datetime) -> Label | None:
        """The label of the latest click of ``people`` (None keys ignored) at most ``window``
        before a conversion at ``ts``, or None."""
        latest: tuple[datetime, Label] | None = None
        for person in people:
            click = self._last.get(person) if person is not None else None
            if click is not None and (latest is None or click[0] > latest[0]):
                latest = click
        if latest is None or ts - latest[0] > self.window:
            return None
        return latest[1]
