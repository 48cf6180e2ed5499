"""A generated catalogue and browsing history for the demo shop (deterministic with a seed)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

CATEGORIES = {
    "coffee": ["Espresso beans", "Filter roast", "Decaf blend", "Cold brew pack", "Single origin"],
    "kitchen": ["Mug", "Pour-over dripper", "Grinder", "Milk frother", "Kettle"],
    "tea": ["Green tea", "Black tea", "Herbal infusion", "Matcha", "Chai mix"],
    "bakery": ["Croissant box", "Biscotti", "Shortbread", "Brownie tin", "Granola"],
    "books": ["Barista handbook", "Tea atlas", "Baking basics", "Coffee roaster's guide", "Kitchen science"],
    "garden": ["Herb planter", "Watering can", "Seed kit", "Compost bin", "Garden gloves"],
}
ADJECTIVES = ["Classic", "Organic", "Premium", "Everyday", "Artisan", "Nordic", "Rustic", "Deluxe"]


def generate_catalog(n_items: int = 300, seed: int = 7) -> list[dict]:
    rng = random.Random(seed)
    items = []
    categories = list(CATEGORIES)
    for index in range(n_items):
        category = categories[index % len(categories)]
        noun = rng.choice(CATEGORIES[category])
        adjective = rng.choice(ADJECTIVES)
        sku = f"sku-{index:04d}"
        items.append(
            {
                "id": sku,
                "title": f"{adjective} {noun}",
                "url": f"/p/{sku}",
                "image_url": f"/static/img/{category}.svg",
                "price": round(rng.uniform(3, 80), 2),
                "category": category,
                "description": f"{adjective} {noun.lower()} from our {category} range.",
                "in_stock": rng.random() > 0.05,
            }
        )
    return items


def generate_history(items: list[dict], n_users: int = 120, seed: int = 7) -> list[dict]:
    """Simulated shoppers: each prefers two categories, views, carts and sometimes buys."""
    rng = random.Random(seed)
    by_category: dict[str, list[str]] = {}
    for item in items:
        by_category.setdefault(item["category"], []).append(item["id"])
    categories = list(by_category)
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    rows = []
    for user in range(n_users):
        liked = rng.sample(categories, 2)
        moment = start + timedelta(minutes=rng.randint(0, 60 * 24 * 20))
        for _ in range(rng.randint(5, 30)):
            pool = by_category[rng.choice(liked)] if rng.random() < 0.85 else by_category[rng.choice(categories)]
            # A few items per category are bestsellers.
            sku = pool[min(int(rng.expovariate(0.15)), len(pool) - 1)]
            moment += timedelta(minutes=rng.randint(1, 600))
            rows.append({"user_id": f"user-{user}", "item_id": sku, "type": "view", "ts": moment})
            if rng.random() < 0.3:
                rows.append({"user_id": f"user-{user}", "item_id": sku, "type": "add_to_cart", "ts": moment})
                if rng.random() < 0.5:
                    rows.append({"user_id": f"user-{user}", "item_id": sku, "type": "purchase", "ts": moment})
    return rows
