"""``TrainReport``: what a training or evaluation run did, for Python callers and the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

METRIC_KEYS = ("ndcg@10", "recall@10", "recall@20", "coverage")


@dataclass
class TrainReport:
    """The result of ``recs.train()`` / ``recs.evaluate()``.

    ``status`` is ``published``, ``rejected`` (quality gate), ``failed``, ``skipped`` (another
    run holds the lease) or ``evaluated``. Reads like a dict too: ``report["version"]``.
    """

    status: str
    version: str | None = None
    published: bool = False
    metrics: dict[str, float] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    message: str = ""
    run_id: int | None = None
    serving_version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)

    def summary(self) -> str:
        """A short plain-text table: version, counts, timings per stage, metrics vs popularity."""
        lines = [f"status     {self.status}" + (f"  ({self.message})" if self.message else "")]
        lines.append(f"version    {self.version or '-'}   serving: {self.serving_version or '-'}")
        if self.counts:
            shown = ("events_read", "interactions", "users", "items", "catalog_items", "test_users")
            lines.append("counts     " + "  ".join(f"{k}={self.counts[k]}" for k in shown if k in self.counts))
        if self.timings:
            lines.append("timings    " + "  ".join(f"{k}={v:.2f}s" for k, v in self.timings.items()))
        if self.metrics:
            lines.append(f"{'metric':<12}{'model':>10}{'popularity':>12}")
            for key in METRIC_KEYS:
                if key in self.metrics:
                    base = self.metrics.get("popularity_" + key)
                    base_s = f"{base:>12.4f}" if base is not None else f"{'-':>12}"
                    lines.append(f"{key:<12}{self.metrics[key]:>10.4f}{base_s}")
        return "\n".join(lines)
