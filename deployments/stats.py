"""The statistics of onboarding results, in plain Python (`math`): no scipy at run time.
The formulas are written out in docs/deployments.md; tests compare them with scipy and
statsmodels to 1e-9."""

import math
from dataclasses import dataclass

# The two-sided 95% normal quantile, Φ⁻¹(0.975).
Z95 = 1.959963984540054


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion; (0, 0) for no trials."""
    if n <= 0:
        return 0.0, 0.0
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z."""
    return 0.5 * math.erfc(z / math.sqrt(2))


@dataclass(frozen=True)
class TwoProportions:
    diff: float  # p_treatment - p_control
    diff_ci_low: float
    diff_ci_high: float
    relative: float | None  # diff / p_control, None when p_control is 0
    z: float | None
    p_value: float | None


def compare_proportions(x1: int, n1: int, x2: int, n2: int, z: float = Z95) -> TwoProportions:
    """Treatment (x1/n1) against control (x2/n2): the difference with a Wald (unpooled) interval
    and the two-sided z-test with pooled variance."""
    if n1 <= 0 or n2 <= 0:
        return TwoProportions(0.0, 0.0, 0.0, None, None, None)
    p1, p2 = x1 / n1, x2 / n2
    diff = p1 - p2
    se_diff = math.sqrt(p1 * (1 - p1) / n1 + p2 * (1 - p2) / n2)
    pooled = (x1 + x2) / (n1 + n2)
    se_pooled = math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2))
    if se_pooled == 0:
        statistic, p_value = None, None  # every account, or none, completed in both arms
    else:
        statistic = diff / se_pooled
        p_value = min(1.0, 2 * normal_sf(abs(statistic)))
    return TwoProportions(
        diff=diff,
        diff_ci_low=diff - z * se_diff,
        diff_ci_high=diff + z * se_diff,
        relative=diff / p2 if p2 > 0 else None,
        z=statistic,
        p_value=p_value,
    )


def regularized_gamma_q(a: float, x: float) -> float:
    """Q(a, x) = Γ(a, x) / Γ(a), the regularized upper incomplete gamma function: by its
    series below a + 1 and by Lentz's continued fraction above (Numerical Recipes §6.2)."""
    if a <= 0:
        raise ValueError("a must be positive")
    if x <= 0:
        return 1.0
    log_prefix = -x + a * math.log(x) - math.lgamma(a)
    if x < a + 1:
        term = total = 1.0 / a
        ap = a
        for _ in range(10_000):
            ap += 1
            term *= x / ap
            total += term
            if abs(term) < abs(total) * 1e-16:
                break
        return max(0.0, 1.0 - total * math.exp(log_prefix))
    tiny = 1e-300
    b = x + 1 - a
    c = 1 / tiny
    d = 1 / b
    h = d
    for i in range(1, 10_000):
        an = -i * (i - a)
        b += 2
        d = an * d + b
        d = tiny if abs(d) < tiny else d
        c = b + an / c
        c = tiny if abs(c) < tiny else c
        d = 1 / d
        delta = d * c
        h *= delta
        if abs(delta - 1) < 1e-16:
            break
    return math.exp(log_prefix) * h


def chi2_sf(statistic: float, df: int) -> float:
    """P(χ²_df > statistic)."""
    return regularized_gamma_q(df / 2, statistic / 2)


def srm_p_value(observed: list[int], expected_shares: list[float]) -> float | None:
    """Sample-ratio mismatch: Pearson's χ² goodness of fit of the observed counts against the
    configured shares (any scale; normalised here), k - 1 degrees of freedom. None with fewer
    than two arms, no observations, or an arm expected to get nothing."""
    total = sum(observed)
    share_total = sum(expected_shares)
    if len(observed) < 2 or total == 0 or share_total <= 0 or min(expected_shares) <= 0:
        return None
    statistic = 0.0
    for count, share in zip(observed, expected_shares, strict=True):
        expected = total * share / share_total
        statistic += (count - expected) ** 2 / expected
    return chi2_sf(statistic, len(observed) - 1)
