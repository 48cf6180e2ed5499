"""The training engine: events -> interaction matrix -> models -> evaluation -> bundles.

Runs without Flask: ``train_from_url(database_url, model_dir, settings)`` is a whole run from
plain Python; ``storefront_recs.engine.train.train`` is the same with an engine and a store.
"""

from .standalone import train_from_url

__all__ = ["train_from_url"]
