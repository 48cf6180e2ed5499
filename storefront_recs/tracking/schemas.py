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
# Defaults of RECS_MAX_QUANTITY, RECS_MAX_PRICE and RECS_MAX_VALUE (see config.py).
MAX_QUANTITY = 10_000
MAX_PRICE = 1e9
MAX_VALUE = 1e12
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
    quantity = fields.Integer(load_default=1, validate=validate.Range(min=1))
    price = fields.Float(allow_nan=False, validate=validate.Range(min=0), allow_none=True)


class EventSchema(Schema):
    """One event as a browser or the shop's server sends it."""

    class Meta:
        unknown = EXCLUDE

    event_id = fields.String(required=True, validate=validate.Regexp(EVENT_ID_PATTERN))
    type = fields.String(required=True, validate=validate.OneOf(EVENT_TYPES))
    item_id = _text(ITEM_ID_LENGTH)
    items = fields.List(fields.Nested(LineItemSchema), validate=validate.Length(min=1))
    quantity = fields.Integer(load_default=1, validate=validate.Range(min=1))
    value = fields.Float(allow_nan=False, validate=validate.Range(min=0), allow_none=True)
    ts = Timestamp()
    context = fields.Nested(ContextSchema)

    def __init__(self, *, max_future: timedelta, max_lines: int, max_quantity: int = MAX_QUANTITY,
                 max_price: float = MAX_PRICE, max_value: float = MAX_VALUE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.max_future = max_future
        self.max_lines = max_lines
        self.max_quantity = max_quantity
        self.max_price = max_price
        self.max_value = max_value

    def _check_amounts(self, data: dict[str, Any]) -> None:
        """Quantities, prices and values within the configured bounds, and every line's
        ``price x quantity`` too: no stored value can be infinite or absurd."""
        errors: dict[str, Any] = {}
        if data.get("quantity", 1) > self.max_quantity:
            errors["quantity"] = [f"at most {self.max_quantity}"]
        if (data.get("value") or 0) > self.max_value:
            errors["value"] = [f"at most {self.max_value:g}"]
        for number, line in enumerate(data.get("items") or []):
            problems = []
            if line.get("quantity", 1) > self.max_quantity:
                problems.append(f"quantity: at most {self.max_quantity}")
            price = line.get("price")
            if price is not None and price > self.max_price:
                problems.append(f"price: at most {self.max_price:g}")
            elif price is not None and price * line.get("quantity", 1) > self.max_value:
                problems.append(f"price x quantity: at most {self.max_value:g}")
            if problems:
                errors[f"items.{number}"] = ["; ".join(problems)]
        if errors:
            raise ValidationError(errors)

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
        self._check_amounts(data)
        ts = data.get("ts")
        if ts is not None and ts > datetime.now(UTC).replace(tzinfo=None) + self.max_future:
            raise ValidationError("timestamp is in the future", "ts")
