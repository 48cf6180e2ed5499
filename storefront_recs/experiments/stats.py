"""Statistics of an experiment: intervals, significance tests and lift (scipy.stats does the
distributions; nothing here re-implements one)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import stats


@dataclass(frozen=True)
class Estimate:
    """A rate or a mean with its confidence interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class Comparison:
    """A variant against the baseline: difference, relative lift, p-value."""

    difference: float
    difference_low: float
    difference_high: float
    lift: float | None  # (variant - baseline) / baseline; None when the baseline is 0
    statistic: float
    p_value: float

    def significant(self, confidence: float) -> bool:
        return self.p_value < 1 - confidence


def proportion(successes: int, trials: int, confidence: float = 0.95) -> Estimate:
    """A rate with its Wilson score interval."""
    if trials <= 0:
        return Estimate(0.0, 0.0, 0.0)
    ci = stats.binomtest(successes, trials).proportion_ci(confidence_level=confidence, method="wilson")
    return Estimate(successes / trials, float(ci.low), float(ci.high))


def two_proportions(k_variant: int, n_variant: int, k_base: int, n_base: int,
                    confidence: float = 0.95) -> Comparison | None:
    """Two-proportion z-test (pooled standard error) and a Wald interval of the difference."""
    if n_variant <= 0 or n_base <= 0:
        return None
    p1, p0 = k_variant / n_variant, k_base / n_base
    pooled = (k_variant + k_base) / (n_variant + n_base)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n_variant + 1 / n_base))
    z = (p1 - p0) / se_pooled if se_pooled > 0 else 0.0
    p_value = float(2 * stats.norm.sf(abs(z)))
    se = math.sqrt(p1 * (1 - p1) / n_variant + p0 * (1 - p0) / n_base)
    half = float(stats.norm.ppf(0.5 + confidence / 2)) * se
    diff = p1 - p0
    return Comparison(diff, diff - half, diff + half, diff / p0 if p0 > 0 else None, z, p_value)


def mean(values: Sequence[float], confidence: float = 0.95) -> Estimate:
    """A mean with its Student-t interval."""
    n = len(values)
    if n == 0:
        return Estimate(0.0, 0.0, 0.0)
    average = sum(values) / n
    if n < 2:
        return Estimate(average, average, average)
    sem = float(stats.sem(values))
    if sem == 0:
        return Estimate(average, average, average)
    low, high = stats.t.interval(confidence, n - 1, loc=average, scale=sem)
    return Estimate(average, float(low), float(high))


def two_means(variant: Sequence[float], base: Sequence[float], confidence: float = 0.95) -> Comparison | None:
    """Welch's t-test and interval of the difference of two means (e.g. revenue per visitor)."""
    if len(variant) < 2 or len(base) < 2:
        return None
    m1, m0 = sum(variant) / len(variant), sum(base) / len(base)
    v1, v0 = float(stats.tvar(variant)) / len(variant), float(stats.tvar(base)) / len(base)
    diff = m1 - m0
    if v1 + v0 == 0:
        return Comparison(diff, diff, diff, diff / m0 if m0 > 0 else None, 0.0, 1.0 if diff == 0 else 0.0)
    result = stats.ttest_ind(variant, base, equal_var=False)
    dof = (v1 + v0) ** 2 / (v1**2 / (len(variant) - 1) + v0**2 / (len(base) - 1))
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(v1 + v0)
    return Comparison(diff, diff - half, diff + half, diff / m0 if m0 > 0 else None,
                      float(result.statistic), float(result.pvalue))


def sample_ratio_mismatch(observed: Sequence[int], percents: Sequence[float]) -> float | None:
    """p-value of a chi-square test that visitors were split as the percents say (a tiny value
    means assignment or tracking is broken, and the results cannot be trusted)."""
    pairs = [(o, p) for o, p in zip(observed, percents, strict=True) if p > 0]
    total, share = sum(o for o, _ in pairs), sum(p for _, p in pairs)
    if len(pairs) < 2 or total == 0:
        return None
    expected = [total * p / share for _, p in pairs]
    return float(stats.chisquare([o for o, _ in pairs], expected).pvalue)
