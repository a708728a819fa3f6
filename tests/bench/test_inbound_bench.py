"""How long refusing a hostile message takes: 10,000 tiny MIME parts and 2,000 nested levels
(the stdlib parser alone took ~14 s on the first and crashed on the second)."""

import time

from support import inbound
from tests.bench.conftest import report
from tests.support.test_inbound_limits import many_parts, nested


def _seconds(raw: bytes) -> tuple[float, str]:
    start = time.perf_counter()
    try:
        inbound.parse_email(raw)
        outcome = "parsed"
    except inbound.InvalidInput as exc:
        outcome = exc.code
    return time.perf_counter() - start, outcome


def test_hostile_mime_is_refused_fast():
    figures, outcomes = {}, []
    for name, raw in [
        ("10,000 parts", many_parts(10_000)),
        ("2,000 levels", nested(2_000)),
        ("400 parts (allowed)", many_parts(400)),
    ]:
        seconds, outcome = _seconds(raw)
        outcomes.append(outcome)
        figures[f"{name}, {len(raw):,} bytes"] = f"{seconds * 1000:.1f} ms → {outcome}"
    report("inbound MIME limits", **figures)
    assert outcomes == ["too_many_parts", "too_deeply_nested", "parsed"]
