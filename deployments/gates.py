"""The gates a stage passes before a deployment advances, each a pure function of counts.

Health (issue 10) plugs in through `set_health_source`: until an app registers one, the
health gate reports "no data" and does not block.
"""

from collections.abc import Callable
from dataclasses import asdict, dataclass
from decimal import Decimal

from deployments.selectors import Arms

PASS, FAIL, WAITING, NO_DATA = "pass", "fail", "waiting", "no_data"

# (salt, percentage, start, end) -> (exposed mean, exposed n, control mean, control n) or None
HealthSource = Callable[..., tuple[float | None, int, float | None, int] | None]
_health_source: HealthSource | None = None


def set_health_source(source: HealthSource | None) -> None:
    """Account health registers how to read mean health per arm; None unregisters."""
    global _health_source
    _health_source = source


def health_source() -> HealthSource | None:
    return _health_source


@dataclass(frozen=True)
class GateResult:
    gate: str
    result: str
    exposed_rate: float | None
    control_rate: float | None
    margin: float
    exposed_n: int
    control_n: int
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def error_rate_gate(arms: Arms, *, margin: Decimal, min_events: int) -> GateResult:
    m = float(margin)
    if arms.exposed_events < min_events or arms.control_events < min_events:
        return GateResult(
            "error_rate",
            WAITING,
            arms.exposed_errors / arms.exposed_events if arms.exposed_events else None,
            arms.control_errors / arms.control_events if arms.control_events else None,
            m,
            arms.exposed_events,
            arms.control_events,
            f"Waiting for {min_events} usage events in each arm "
            f"(exposed {arms.exposed_events}, control {arms.control_events}).",
        )
    exposed = arms.exposed_errors / arms.exposed_events
    control = arms.control_errors / arms.control_events
    failed = exposed - control > m
    return GateResult(
        "error_rate",
        FAIL if failed else PASS,
        exposed,
        control,
        m,
        arms.exposed_events,
        arms.control_events,
        f"Error rate {exposed:.4%} exposed vs {control:.4%} control; margin {m:.2%}.",
    )


def ticket_gate(arms: Arms, *, margin: Decimal) -> GateResult:
    m = float(margin)
    if arms.exposed_tickets is None or arms.exposed_accounts == 0 or arms.control_accounts == 0:
        return GateResult(
            "tickets",
            NO_DATA,
            None,
            None,
            m,
            arms.exposed_accounts,
            arms.control_accounts,
            "No data: an arm has no accounts (or support is not installed); not blocking.",
        )
    exposed = arms.exposed_tickets / arms.exposed_accounts
    control = arms.control_tickets / arms.control_accounts
    failed = exposed - control > m
    return GateResult(
        "tickets",
        FAIL if failed else PASS,
        exposed,
        control,
        m,
        arms.exposed_accounts,
        arms.control_accounts,
        f"Tickets per account {exposed:.4f} exposed vs {control:.4f} control; margin {m:.4f}.",
    )


def health_gate(health, *, margin: Decimal) -> GateResult:
    m = float(margin)
    if health is None or health[0] is None or health[2] is None or not health[1] or not health[3]:
        n_exposed = health[1] if health else 0
        n_control = health[3] if health else 0
        return GateResult(
            "health",
            NO_DATA,
            None,
            None,
            m,
            n_exposed or 0,
            n_control or 0,
            "No data: account health is not available for both arms; not blocking.",
        )
    exposed, n_exposed, control, n_control = health
    failed = control - exposed > m
    return GateResult(
        "health",
        FAIL if failed else PASS,
        exposed,
        control,
        m,
        n_exposed,
        n_control,
        f"Mean health {exposed:.1f} exposed vs {control:.1f} control; may drop {m:.1f} points.",
    )
