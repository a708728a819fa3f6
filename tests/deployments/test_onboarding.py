"""Onboarding experiments: the version table, the 100% guard, sticky persona-targeted
assignment that honours the shares, and the results against control."""

import datetime as dt
from decimal import Decimal

import pytest
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from deployments import selectors, services
from deployments.models import OnboardingAssignment, OnboardingVersion
from opsplatform.errors import Conflict, InvalidInput
from opsplatform.models import UsageEvent
from tests.deployments.conftest import make_accounts
from tests.factories import staff_in

pytestmark = pytest.mark.django_db

VERSION_ALLOWED = {("draft", "active"), ("draft", "retired"), ("active", "retired")}


def _version(name="v2", share=50, personas=None, status="draft", **kw) -> OnboardingVersion:
    version = services.create_onboarding_version(
        version_name=name,
        rollout_percentage=share,
        target_personas=personas or [],
        features=kw.pop("features", ["checklist"]),
        **kw,
    )
    if status != "draft":
        version.status = status
        version.save()
    return version


def test_version_table_is_exactly_the_spelled_out_pairs():
    assert OnboardingVersion.STATUS_MACHINE.pairs() == VERSION_ALLOWED


@pytest.mark.parametrize("frm", ["draft", "active", "retired"])
@pytest.mark.parametrize("to", ["active", "retired"])
def test_every_version_pair_through_the_services(frm, to):
    actor = staff_in("operations")
    version = _version(status=frm)
    before = version.history.count()
    move = services.activate_version if to == "active" else services.retire_version
    if (frm, to) in VERSION_ALLOWED:
        moved = move(version_id=version.id, actor=actor)
        assert moved.status == to
        assert version.history.latest().history_user == actor
    else:
        with pytest.raises(Conflict):
            move(version_id=version.id, actor=actor)
        assert OnboardingVersion.objects.get(pk=version.pk).status == frm
        assert version.history.count() == before


def test_activation_past_100_percent_for_a_persona_is_refused():
    everyone = _version("everyone", 60)
    agencies = _version("agencies", 50, ["agency"])
    brands = _version("brands", 40, ["brand"])
    services.activate_version(version_id=everyone.id)
    services.activate_version(version_id=brands.id)  # 60 + 40 = 100 for brands: allowed
    with pytest.raises(Conflict) as caught:
        services.activate_version(version_id=agencies.id)
    assert caught.value.code == "shares_exceed_100"
    assert "agency 110" in caught.value.detail
    assert OnboardingVersion.objects.get(pk=agencies.pk).status == "draft"


def test_unknown_persona_is_refused():
    with pytest.raises(InvalidInput):
        _version("x", 10, ["astronaut"])
    assert not OnboardingVersion.objects.filter(name="x").exists()


def test_the_split_honours_the_shares_over_20k_accounts():
    a = OnboardingVersion(name="a", rollout_percentage=Decimal(30), salt="salt-a")
    b = OnboardingVersion(name="b", rollout_percentage=Decimal(20), salt="salt-b")
    counts = {"a": 0, "b": 0, None: 0}
    for account_id in range(1, 20_001):
        chosen = services.choose_version(account_id, [a, b])
        counts[chosen.name if chosen else None] += 1
    assert abs(counts["a"] / 200 - 30) <= 1.5
    assert abs(counts["b"] / 200 - 20) <= 1.5
    assert abs(counts[None] / 200 - 50) <= 1.5


def test_assignment_is_sticky_and_persona_targeted():
    solos = make_accounts(30)
    agencies = make_accounts(30, "agency")
    version = _version("agency-flow", 100, ["agency"], features=["agency_tour"])
    services.activate_version(version_id=version.id)
    first = {a.id: services.assign_user_to_version(user_id=a.id)[0] for a in solos + agencies}
    assert all(first[a.id].version_id is None for a in solos)  # not eligible: control
    assert all(first[a.id].version_id == version.id for a in agencies)  # 100% share
    # Retire it and add another: nobody moves.
    services.retire_version(version_id=version.id)
    other = _version("everyone", 100)
    services.activate_version(version_id=other.id)
    for a in solos + agencies:
        again, created = services.assign_user_to_version(user_id=a.id)
        assert not created
        assert (again.version_id, again.assigned_at) == (
            first[a.id].version_id,
            first[a.id].assigned_at,
        )
    assert OnboardingAssignment.objects.count() == 60


def test_persona_segment_must_match_the_account():
    (account,) = make_accounts(1)
    with pytest.raises(InvalidInput):
        services.assign_user_to_version(user_id=account.id, persona_segment="brand")
    assert not OnboardingAssignment.objects.exists()
    assignment, created = services.assign_user_to_version(
        user_id=account.id, persona_segment="solo_podcaster"
    )
    assert created and assignment.version is None


def _assign(accounts, version, completed: int, at: dt.datetime, late: int = 0):
    """Assign accounts to `version` (None: control); the first `completed` complete within the
    window, the next `late` complete after it (not counted)."""
    OnboardingAssignment.objects.bulk_create(
        OnboardingAssignment(account=a, version=version, persona=a.persona, assigned_at=at)
        for a in accounts
    )
    events = [
        UsageEvent(
            account=a,
            type="onboarding_completed",
            occurred_at=at + dt.timedelta(days=3 if i < completed else 20),
            idempotency_key=f"done-{a.id}",
        )
        for i, a in enumerate(accounts[: completed + late])
    ]
    UsageEvent.objects.bulk_create(events)


def test_results_against_control_equal_the_reference_statistics(django_assert_max_num_queries):
    version = _version("guided", 50, min_sample_per_arm=20)
    services.activate_version(version_id=version.id)
    at = OnboardingVersion.objects.get(pk=version.pk).activated_at + dt.timedelta(hours=1)
    accounts = make_accounts(70)
    _assign(accounts[:30], version, completed=18, at=at, late=5)
    _assign(accounts[30:], None, completed=12, at=at)
    version.refresh_from_db()
    with django_assert_max_num_queries(4):
        r = selectors.onboarding_results(version=version)
    treat, control = r["arms"]
    assert (treat["assigned"], treat["completed"]) == (30, 18)
    assert (control["assigned"], control["completed"]) == (40, 12)
    assert treat["completion_rate"] == pytest.approx(0.6)
    low, high = proportion_confint(18, 30, method="wilson")
    assert (treat["ci_low"], treat["ci_high"]) == (
        pytest.approx(low, abs=1e-9),
        pytest.approx(high, abs=1e-9),
    )
    assert r["lift_abs"] == pytest.approx(0.3)
    assert r["lift_rel"] == pytest.approx(1.0)
    _, p = proportions_ztest([18, 12], [30, 40])
    assert r["p_value"] == pytest.approx(p, abs=1e-9)
    # 30 vs 40 against 50/50: χ² = (5² + 5²) / 35 = 1.4286, p = 0.2320
    assert r["srm_p_value"] == pytest.approx(0.23199, abs=1e-4)
    assert r["srm_flag"] is False
    assert r["verdict"] == "winner"
    assert r["window_days"] == 14


def test_below_the_minimum_sample_the_verdict_is_not_enough_data():
    version = _version("tiny", 50)  # default minimum: 100 per arm
    services.activate_version(version_id=version.id)
    at = OnboardingVersion.objects.get(pk=version.pk).activated_at
    accounts = make_accounts(40)
    _assign(accounts[:20], version, completed=20, at=at)
    _assign(accounts[20:], None, completed=0, at=at)
    r = selectors.onboarding_results(version=OnboardingVersion.objects.get(pk=version.pk))
    assert r["p_value"] < 0.001
    assert r["verdict"] == "not_enough_data"


def test_a_sample_ratio_mismatch_is_flagged():
    version = _version("skewed", 50, min_sample_per_arm=10)
    services.activate_version(version_id=version.id)
    at = OnboardingVersion.objects.get(pk=version.pk).activated_at
    accounts = make_accounts(130)
    _assign(accounts[:100], version, completed=50, at=at)
    _assign(accounts[100:], None, completed=15, at=at)
    r = selectors.onboarding_results(version=OnboardingVersion.objects.get(pk=version.pk))
    # 100 vs 30 against 50/50: χ² = 2 * 35² / 65 = 37.69, p ≈ 8.3e-10
    assert r["srm_p_value"] < 0.001
    assert r["srm_flag"] is True
    assert r["verdict"] == "sample_ratio_mismatch"
