"""Marshmallow schemas of incoming events. Unknown fields are dropped, never stored."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import (
    EXCLUDE,
    Schema,
    ValidationError,
    fields,
    post_load,
    validate,
    validates_schema,
)

from ..models import EVENT_ID_LENGTH, ITEM_ID_LENGTH
from ..privacy.sanitize import sanitize_context

EVENT_TYPES = (
    "page_view",
    "view",
    "add_to_cart",
    "remove_from_cart",
    "purchase",
    "search",
    "impression",
    "click",
)
ITEM_EVENT_TYPES = frozenset({"view", "add_to_cart", "remove_from_cart", "impression", "click"})
EVENT_ID_PATTERN = rf"^[A-Za-z0-9_.:-]{{8,{EVENT_ID_LENGTH}}}$"
MAX_QUANTITY = 10_000
# Unix times above this are taken as milliseconds (1e11 s is the year 5138).
MILLISECONDS_THRESHOLD = 1e11
SECONDS_DIGITS = 11  # a string of at most 11 digits is below the threshold: seconds
EPOCH = datetime(1970, 1, 1)


def parse_timestamp(value: Any) -> datetime:
    """ISO-8601 text or unix seconds (or milliseconds) -> naive UTC datetime."""
    if isinstance(value, bool):
        raise ValueError("not a timestamp")
    if isinstance(value, int | float):
        seconds = value / 1000 if value > MILLISECONDS_THRESHOLD else value
        return datetime.fromtimestamp(seconds, UTC).replace(tzinfo=None)
    if isinstance(value, str):
        text = value.strip()
        # Fast paths for bulk imports: whole unix seconds, and text that can only be ISO.
        if len(text) <= SECONDS_DIGITS and text.isdigit() and text.isascii():
            return EPOCH + timedelta(seconds=int(text))
        if not (text[4:5] == "-" and text[:4].isdigit()):
            try:
                return parse_timestamp(float(text))
            except ValueError:
                pass
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        if parsed.tzinfo is not None:
            parsed = parsed.astimezone(UTC).replace(tzinfo=None)
        return parsed
    raise ValueError("not a timestamp")


class Timestamp(fields.Field):
    """A point in time given as ISO-8601 or unix seconds/milliseconds."""

    default_error_messages = {"invalid": "Not a valid timestamp (ISO-8601 or unix seconds)."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> datetime:
        try:
            return parse_timestamp(value)
        except (ValueError, OverflowError, OSError) as exc:
            raise self.make_error("invalid") from exc


def _text(max_length: int, **kwargs: Any) -> fields.String:
    return fields.String(validate=validate.Length(min=1, max=max_length), **kwargs)


class ContextSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    page = fields.String(validate=validate.Length(max=2000))
    referrer = fields.String(validate=validate.Length(max=2000))
    widget = _text(64)
    slot = _text(64)
    token = _text(1024)
    query = fields.String(validate=validate.Length(max=500))
    position = fields.Integer(validate=validate.Range(min=0, max=1000))
    campaign = _text(128)
    variant = _text(64)

    @post_load
    def minimise(self, data: dict[str, Any], **_: Any) -> dict[str, Any]:
        """Keep nothing identifying: page path only, referrer origin only, emails/IPs masked."""
        return sanitize_context(data)


class LineItemSchema(Schema):
    class Meta:
        unknown = EXCLUDE

    item_id = _text(ITEM_ID_LENGTH, required=True)
    quantity = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))
    price = fields.Float(allow_nan=False, validate=validate.Range(min=0), allow_none=True)


class EventSchema(Schema):
    """One event as a browser or the shop's server sends it."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=validate.Regexp(EVENT_ID_PATTERN))
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    item_id = _text(ITEM_ID_LENGTH)
    items = fields.List(fields.Nested(LineItemSchema), validate=validate.Length(min=1))
    quantity = fields.Integer(load_default=1, validate=validate.Range(min=1, max=MAX_QUANTITY))
    value = fields.Float(allow_nan=False, validate=validate.Range(min=0), allow_none=True)
    ts = Timestamp()
    context = fields.Nested(ContextSchema)

    def __init__(self, *, max_future: timedelta, max_lines: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_future = max_future
        self.max_lines = max_lines

    @validates_schema
    def check_consistency(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("type")
        if kind in ITEM_EVENT_TYPES and not data.get("item_id"):
            raise ValidationError(f"a {kind} event needs an item_id", "item_id")
        if kind == "purchase" and not (data.get("item_id") or data.get("items")):
            raise ValidationError("a purchase needs an item_id or items", "items")
        if data.get("items") is not None:
            if kind != "purchase":
                raise ValidationError("only a purchase may carry items", "items")
            if len(data["items"]) > self.max_lines:
                raise ValidationError(f"more than {self.max_lines} line items", "items")
        ts = data.get("ts")
        if ts is not None and ts > datetime.now(UTC).replace(tzinfo=None) + self.max_future:
            raise ValidationError("timestamp is in the future", "ts")
