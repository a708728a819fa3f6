"""The onboarding statistics equal scipy's and statsmodels' on fixed data, to 1e-9."""

import math

import pytest
from scipy import stats as sps
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_ztest,
)

from deployments import stats

CASES = [(45, 120), (0, 50), (50, 50), (1, 3), (512, 1000), (7, 10_000), (9_870, 10_000)]


def test_z95_is_the_normal_quantile():
    assert pytest.approx(sps.norm.ppf(0.975), abs=1e-12) == stats.Z95


@pytest.mark.parametrize(("x", "n"), CASES)
def test_wilson_equals_statsmodels(x, n):
    low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
    ours = stats.wilson_interval(x, n)
    assert ours[0] == pytest.approx(low, abs=1e-9)
    assert ours[1] == pytest.approx(high, abs=1e-9)


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2"),
    [(130, 400, 100, 400), (45, 120, 60, 130), (8, 1000, 12, 1100), (300, 500, 310, 520)],
)
def test_two_proportion_test_and_interval_equal_statsmodels(x1, n1, x2, n2):
    ours = stats.compare_proportions(x1, n1, x2, n2)
    z, p = proportions_ztest([x1, x2], [n1, n2])  # pooled variance by default
    assert ours.z == pytest.approx(z, abs=1e-9)
    assert ours.p_value == pytest.approx(p, abs=1e-9)
    assert ours.p_value == pytest.approx(2 * sps.norm.sf(abs(z)), abs=1e-9)
    low, high = confint_proportions_2indep(x1, n1, x2, n2, method="wald", compare="diff")
    assert ours.diff_ci_low == pytest.approx(low, abs=1e-9)
    assert ours.diff_ci_high == pytest.approx(high, abs=1e-9)
    assert ours.diff == pytest.approx(x1 / n1 - x2 / n2, abs=1e-15)
    assert ours.relative == pytest.approx((x1 / n1 - x2 / n2) / (x2 / n2), abs=1e-12)


@pytest.mark.parametrize(
    ("statistic", "df"),
    [
        (0.0, 1),
        (0.001, 1),
        (0.5, 1),
        (3.84, 1),
        (10.83, 1),
        (2.0, 2),
        (7.5, 3),
        (25.0, 4),
        (80.0, 2),
        (0.3, 5),
        (150.0, 9),
    ],
)
def test_chi2_survival_equals_scipy(statistic, df):
    assert stats.chi2_sf(statistic, df) == pytest.approx(sps.chi2.sf(statistic, df), abs=1e-9)


@pytest.mark.parametrize(
    ("observed", "shares"),
    [
        ([480, 520], [50, 50]),
        ([1000, 4200], [20, 80]),
        ([300, 310, 390], [30, 30, 40]),
        ([1200, 800], [50, 50]),
    ],
)
def test_srm_equals_scipy_chisquare(observed, shares):
    total = sum(observed)
    expected = [total * s / sum(shares) for s in shares]
    assert stats.srm_p_value(observed, shares) == pytest.approx(
        sps.chisquare(observed, expected).pvalue, abs=1e-9
    )


def test_degenerate_inputs_answer_none_not_errors():
    assert stats.wilson_interval(0, 0) == (0.0, 0.0)
    same = stats.compare_proportions(0, 10, 0, 10)
    assert same.p_value is None and same.diff == 0.0
    assert stats.srm_p_value([0, 0], [50, 50]) is None
    assert stats.srm_p_value([10], [100]) is None
    assert math.isclose(stats.chi2_sf(0.0, 3), 1.0)
