"""Last-click attribution, the one rule behind experiment results, dashboard funnels and email reports."""

from __future__ import annotations

from datetime import datetime, timedelta

from storefront_recs.tracking.attribution import LastClick

T0 = datetime(2026, 3, 1, 12, 0)
HOUR = timedelta(hours=1)


def test_the_latest_click_within_the_window_is_credited() -> None:
    last = LastClick[str](timedelta(hours=2))
    assert last.credit(["u1"], T0) is None  # no click yet
    last.click(["u1"], T0, "similar")
    last.click(["u1"], T0 + HOUR, "for-you")  # the later click replaces the earlier one
    last.click(["u2"], T0 + HOUR, "trending")  # someone else's click counts for nobody else
    assert last.credit(["u1"], T0 + 2 * HOUR) == "for-you"
    assert last.credit(["u1"], T0 + 3 * HOUR) == "for-you"  # exactly the window: still credited
    assert last.credit(["u1"], T0 + 3 * HOUR + timedelta(seconds=1)) is None  # past it: nothing
    assert last.credit(["u3"], T0 + 2 * HOUR) is None
    assert last.credit(["u2"], T0 + 2 * HOUR) == "trending"


def test_a_person_known_under_several_keys_gets_their_latest_click_under_any() -> None:
    last = LastClick[int](timedelta(days=7))
    last.click([("user", "u1"), ("anon", "a1")], T0, 1)  # a logged-in click from browser a1
    last.click([("anon", "a1")], T0 + HOUR, 2)  # later, logged out, in the same browser
    last.click([("user", "u1"), None], T0 + 2 * HOUR, 3)  # later again, logged in elsewhere
    assert last.credit([("user", "u1"), ("anon", "a1")], T0 + 3 * HOUR) == 3
    assert last.credit([None, ("anon", "a1")], T0 + 3 * HOUR) == 2  # the browser alone
    assert last.credit([("user", "u2"), ("anon", "a1")], T0 + 3 * HOUR) == 2
    assert last.credit([None, None], T0 + 3 * HOUR) is None
