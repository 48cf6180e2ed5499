"""Schema of a catalogue item as the shop sends it."""

from __future__ import annotations

from typing import Any

from marshmallow import EXCLUDE, Schema, fields, pre_load, validate

from ..models import ITEM_ID_LENGTH

ITEM_FIELDS = ("id", "title", "url", "image_url", "price", "category", "description", "in_stock")


class CatalogItemSchema(Schema):
    """Partial by nature: only ``id`` is required; omitted fields are left as they were."""

    class Meta:
        unknown = EXCLUDE

    id = fields.String(required=True, validate=validate.Length(min=1, max=ITEM_ID_LENGTH))
    title = fields.String(validate=validate.Length(max=500), allow_none=True)
    url = fields.String(validate=validate.Length(max=2000), allow_none=True)
    image_url = fields.String(validate=validate.Length(max=2000), allow_none=True)
    price = fields.Float(allow_nan=False, validate=validate.Range(min=0), allow_none=True)
    category = fields.String(validate=validate.Length(max=255), allow_none=True)
    description = fields.String(validate=validate.Length(max=20_000), allow_none=True)
    in_stock = fields.Boolean()
    attributes = fields.Dict(keys=fields.String(validate=validate.Length(max=100)))

    @pre_load
    def coerce_id(self, data: Any, **_: Any) -> Any:
        """Numeric ids (common in JSON feeds) are ids too."""
        if isinstance(data, dict) and isinstance(data.get("id"), int) and not isinstance(data["id"], bool):
            data = {**data, "id": str(data["id"])}
        return data
