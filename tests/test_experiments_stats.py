"""Experiment statistics against values worked out by hand (the arithmetic is in each test)."""

from __future__ import annotations

import math

import pytest

from storefront_recs.experiments import stats

Z95 = 1.959964  # the 97.5% quantile of the standard normal (from tables)


def test_two_proportion_z_test_matches_the_hand_computation() -> None:
    # Variant: 70 conversions of 1000 visitors; baseline (holdout): 50 of 1000.
    # p1 = 0.07, p0 = 0.05, pooled p = 120 / 2000 = 0.06
    # pooled SE = sqrt(0.06 * 0.94 * (1/1000 + 1/1000)) = sqrt(0.0001128) = 0.0106207
    # z = 0.02 / 0.0106207 = 1.88311; two-sided p = erfc(z / sqrt 2) = 0.05968
    result = stats.two_proportions(70, 1000, 50, 1000)
    assert result is not None
    se_pooled = math.sqrt(0.06 * 0.94 * (2 / 1000))
    assert se_pooled == pytest.approx(0.0106207, abs=1e-7)
    assert result.statistic == pytest.approx(0.02 / se_pooled, rel=1e-9)
    assert result.statistic == pytest.approx(1.88311, abs=1e-5)
    assert result.p_value == pytest.approx(math.erfc(1.88311 / math.sqrt(2)), abs=1e-5)
    assert result.p_value == pytest.approx(0.05968, abs=1e-4)
    assert not result.significant(0.95)  # 0.0597 > 0.05
    # Difference 0.02 with the unpooled SE sqrt(0.07*0.93/1000 + 0.05*0.95/1000) = 0.0106113:
    # 0.02 +- 1.959964 * 0.0106113 = [-0.000798, 0.040798]; lift = 0.02 / 0.05 = +40%.
    assert result.difference == pytest.approx(0.02)
    assert result.difference_low == pytest.approx(-0.000798, abs=1e-6)
    assert result.difference_high == pytest.approx(0.040798, abs=1e-6)
    assert result.lift == pytest.approx(0.4)


def test_a_clear_difference_is_significant() -> None:
    # 150/1000 against 100/1000: pooled 0.125, SE = sqrt(0.125*0.875*0.002) = 0.0147902,
    # z = 0.05 / 0.0147902 = 3.38062, p = erfc(3.38062 / sqrt 2) = 0.000723
    result = stats.two_proportions(150, 1000, 100, 1000)
    assert result is not None
    assert result.statistic == pytest.approx(3.38062, abs=1e-5)
    assert result.p_value == pytest.approx(0.000723, abs=2e-6)
    assert result.significant(0.95) and result.significant(0.99)


def test_wilson_interval_of_a_rate() -> None:
    # 50 of 1000, z = 1.959964, z^2 = 3.841459:
    # centre = (0.05 + z^2/2000) / (1 + z^2/1000) = 0.0519207 / 1.0038415 = 0.0517220
    # half = z * sqrt(0.05*0.95/1000 + z^2/4e6) / 1.0038415 = 1.959964 * 0.0069613 / 1.0038415 = 0.0135917
    estimate = stats.proportion(50, 1000)
    z2 = Z95**2
    centre = (0.05 + z2 / 2000) / (1 + z2 / 1000)
    half = Z95 * math.sqrt(0.05 * 0.95 / 1000 + z2 / 4e6) / (1 + z2 / 1000)
    assert estimate.value == 0.05
    assert estimate.low == pytest.approx(centre - half, abs=1e-6)
    assert estimate.high == pytest.approx(centre + half, abs=1e-6)
    assert (estimate.low, estimate.high) == pytest.approx((0.03813, 0.06531), abs=1e-5)
    assert stats.proportion(0, 0) == stats.Estimate(0.0, 0.0, 0.0)


def test_mean_interval_of_revenue_per_visitor() -> None:
    # Revenues 0, 0, 10, 30: mean 10; sample variance (100+100+0+400)/3 = 200; SE = sqrt(200/4) = 7.0711;
    # t(0.975, 3 dof) = 3.182446 (tables): 10 +- 22.5033 = [-12.5033, 32.5033]
    estimate = stats.mean([0, 0, 10, 30])
    assert estimate.value == 10
    assert estimate.low == pytest.approx(10 - 3.182446 * math.sqrt(50), abs=1e-4)
    assert estimate.high == pytest.approx(32.5033, abs=1e-4)


def test_welch_test_of_revenue_per_visitor() -> None:
    # a = 0,0,10,30 (mean 10, var 200); b = 0,0,0,4 (mean 1, var 4)
    # SE = sqrt(200/4 + 4/4) = sqrt(51) = 7.14143; t = 9 / 7.14143 = 1.26025
    # Welch dof = 51^2 / ((50^2)/3 + (1^2)/3) = 2601 / 833.667 = 3.11995
    result = stats.two_means([0, 0, 10, 30], [0, 0, 0, 4])
    assert result is not None
    assert result.difference == 9
    assert result.statistic == pytest.approx(1.26025, abs=1e-5)
    assert result.lift == pytest.approx(9.0)  # (10 - 1) / 1
    assert 0.2 < result.p_value < 0.4  # t = 1.26 on ~3 dof is far from significant
    assert result.difference_low < 0 < result.difference_high
    # The interval is symmetric around the difference with half-width t(0.975, 3.12) * 7.14143,
    # and t(0.975, 3.12) lies between t(0.975, 4) = 2.776445 and t(0.975, 3) = 3.182446.
    half = (result.difference_high - result.difference_low) / 2
    assert 2.776445 * math.sqrt(51) < half < 3.182446 * math.sqrt(51)


def test_sample_ratio_mismatch() -> None:
    # 600 and 400 visitors where 50/50 was asked: chi^2 = (600-500)^2/500 + (400-500)^2/500 = 40;
    # with 1 degree of freedom p = erfc(sqrt(40 / 2)) = 2.54e-10.
    assert stats.sample_ratio_mismatch([600, 400], [50, 50]) == pytest.approx(math.erfc(math.sqrt(20)), rel=1e-6)
    # 510/490: chi^2 = 0.4, p = erfc(sqrt(0.2)) = 0.527; a 0% variant is left out of the test.
    assert stats.sample_ratio_mismatch([510, 490, 0], [50, 50, 0]) == pytest.approx(math.erfc(math.sqrt(0.2)), rel=1e-6)
    assert stats.sample_ratio_mismatch([0, 0], [50, 50]) is None
