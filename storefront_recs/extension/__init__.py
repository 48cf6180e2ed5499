"""``Recs``: the Flask extension a shop mounts, assembled from one mixin per feature area."""

from __future__ import annotations

from ..assembly import EXTENSION_KEY, RecsState
from .core import RecsCore
from .email import EmailAPI
from .experiments import ExperimentsAPI
from .privacy import PrivacyAPI
from .recommendations import RecommendationAPI
from .training import TrainingAPI


class Recs(EmailAPI, ExperimentsAPI, RecommendationAPI, TrainingAPI, PrivacyAPI, RecsCore):
    """Mount storefront-recs on a Flask app: ``Recs(app)`` or ``Recs().init_app(app)``.

    Pass ``db=`` (a Flask-SQLAlchemy instance) to keep the recs tables in the shop's database.
    """


__all__ = ["EXTENSION_KEY", "Recs", "RecsState"]
