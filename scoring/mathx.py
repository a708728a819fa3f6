"""Exact statistics for calibration: non-negative least squares (Lawson-Hanson) and Spearman's
rank correlation, in `Fraction`s. Small dimensions (four weights, tens of launched features),
so exactness costs nothing; scipy checks both in the tests only."""

from decimal import Decimal, localcontext
from fractions import Fraction

Matrix = list[list[Fraction]]


def _solve(a: Matrix, b: list[Fraction]) -> list[Fraction] | None:
    """Gauss-Jordan elimination, exact; None when `a` is singular."""
    n = len(a)
    m = [[*row, rhs] for row, rhs in zip(a, b, strict=True)]
    for col in range(n):
        pivot = next((r for r in range(col, n) if m[r][col] != 0), None)
        if pivot is None:
            return None
        m[col], m[pivot] = m[pivot], m[col]
        p = m[col][col]
        m[col] = [v / p for v in m[col]]
        for r in range(n):
            if r != col and m[r][col] != 0:
                factor = m[r][col]
                m[r] = [v - factor * w for v, w in zip(m[r], m[col], strict=True)]
    return [m[r][n] for r in range(n)]


def _least_squares(ata: Matrix, atb: list[Fraction], columns: list[int]) -> list[Fraction] | None:
    sub = [[ata[i][j] for j in columns] for i in columns]
    return _solve(sub, [atb[i] for i in columns])


def nnls(a: Matrix, b: list[Fraction], max_iterations: int = 200) -> list[Fraction]:
    """x ≥ 0 minimising ‖a·x - b‖² (Lawson & Hanson 1974, chapter 23), exact.

    `a` has one row per observation and one column per weight."""
    a = [[Fraction(v) for v in row] for row in a]
    b = [Fraction(v) for v in b]
    n = len(a[0]) if a else 0
    ata = [[sum((row[i] * row[j] for row in a), Fraction(0)) for j in range(n)] for i in range(n)]
    atb = [sum((row[i] * y for row, y in zip(a, b, strict=True)), Fraction(0)) for i in range(n)]
    x = [Fraction(0)] * n
    passive: list[int] = []

    def gradient() -> list[Fraction]:
        return [atb[i] - sum((ata[i][j] * x[j] for j in range(n)), Fraction(0)) for i in range(n)]

    w = gradient()
    for _ in range(max_iterations):
        active = [j for j in range(n) if j not in passive]
        if not active or max(w[j] for j in active) <= 0:
            return x
        passive.append(max(active, key=lambda j: w[j]))
        while True:
            s_passive = _least_squares(ata, atb, sorted(passive))
            if s_passive is None:
                # A column dependent on the passive set: exact arithmetic never gets here from
                # Lawson-Hanson's choice rule, but a duplicated column would; stop where we are.
                passive.pop()
                return x
            s = [Fraction(0)] * n
            for j, value in zip(sorted(passive), s_passive, strict=True):
                s[j] = value
            if all(s[j] > 0 for j in passive):
                x = s
                break
            alpha = min(x[j] / (x[j] - s[j]) for j in passive if s[j] <= 0)
            x = [x[j] + alpha * (s[j] - x[j]) for j in range(n)]
            passive = [j for j in passive if x[j] > 0]
            for j in range(n):
                if j not in passive:
                    x[j] = Fraction(0)
        w = gradient()
    raise RuntimeError("NNLS did not converge")


def ranks(values: list[Fraction]) -> list[Fraction]:
    """1-based ranks, ties sharing the mean of their positions."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [Fraction(0)] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        mean = Fraction(i + j + 2, 2)
        for k in range(i, j + 1):
            result[order[k]] = mean
        i = j + 1
    return result


def pearson(x: list[Fraction], y: list[Fraction]) -> Decimal | None:
    n = len(x)
    if n < 2:
        return None
    mx, my = sum(x, Fraction(0)) / n, sum(y, Fraction(0)) / n
    sxy = sum(((a - mx) * (b - my) for a, b in zip(x, y, strict=True)), Fraction(0))
    sxx = sum(((a - mx) ** 2 for a in x), Fraction(0))
    syy = sum(((b - my) ** 2 for b in y), Fraction(0))
    if sxx == 0 or syy == 0:
        return None
    with localcontext() as ctx:
        ctx.prec = 40
        r2 = Decimal(sxy.numerator) * Decimal(abs(sxy.numerator)) / Decimal(sxy.denominator**2)
        r2 = r2 / (
            Decimal(sxx.numerator)
            / Decimal(sxx.denominator)
            * Decimal(syy.numerator)
            / Decimal(syy.denominator)
        )
        value = r2.copy_abs().sqrt().copy_sign(r2)
    return value.quantize(Decimal("0.0001"))


def spearman(x: list, y: list) -> Decimal | None:
    """Spearman's rho: Pearson's r of the ranks (ties averaged), to 4 places; None when either
    side has no variation or fewer than two points."""
    return pearson(ranks([Fraction(v) for v in x]), ranks([Fraction(v) for v in y]))


def mean_squared(errors: list[Fraction]) -> Fraction:
    return sum((e * e for e in errors), Fraction(0)) / len(errors)
