"""Privacy controls: erasure, access (export), suppression, sanitising of what is stored.

The pieces other modules plug into are imported from here:

- ``register_data_kind`` / ``DataKind``: add a kind of personal data to erasure and export;
- ``erased_user_keys_reader`` (built on ``ErasureMask`` / ``erased_fingerprints``): how
  serving masks an erased user's factors until the next training run;
- ``Suppressions``: the list of erased people whose future events are not stored.

The ``Recs`` mixin over these is ``extension.privacy``.
"""

from __future__ import annotations

from .erasure import (
    ErasureMask,
    ErasureReceipt,
    add_erasure_listener,
    erased_fingerprints,
    remove_erasure_listener,
)
from .keys import anonymous_fingerprint, user_fingerprint
from .kinds import DataKind, ErasureSubject, data_kinds, register_data_kind, unregister_data_kind
from .masking import erased_user_keys_reader
from .suppression import Suppressions

__all__ = [
    "DataKind",
    "ErasureMask",
    "ErasureReceipt",
    "ErasureSubject",
    "Suppressions",
    "add_erasure_listener",
    "anonymous_fingerprint",
    "data_kinds",
    "erased_fingerprints",
    "erased_user_keys_reader",
    "register_data_kind",
    "remove_erasure_listener",
    "unregister_data_kind",
    "user_fingerprint",
]
