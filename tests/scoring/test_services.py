"""The scoring services: stored scores with their explanation, evidence from tickets, health and
onboarding experiments, comparison, roadmaps, the feature status table, outcomes and refits."""

import datetime as dt
from decimal import Decimal
from fractions import Fraction

import pytest
from django.utils import timezone

from deployments import services as deployment_services
from deployments.models import OnboardingAssignment, OnboardingVersion
from opsplatform.errors import Conflict, InvalidInput, NotFound
from opsplatform.models import Persona, UsageEvent
from scoring import evidence, services
from scoring.formulas import q4
from scoring.metadata import MetadataError
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel
from tests.factories import AccountFactory, staff_in
from tests.scoring.factories import SEED_EXAMPLE, feature, launched, outcome
from tests.support.factories import make_ticket

pytestmark = pytest.mark.django_db
D = Decimal


# --- scoring ----------------------------------------------------------------------------------


def test_score_feature_stores_the_seed_example_with_every_step():
    user = staff_in("operations")
    score = services.score_feature("feature_123", "Advanced Attribution", SEED_EXAMPLE, actor=user)
    stored = FeatureScore.objects.get(pk=score.pk)
    assert stored.feature.key == "feature_123"
    assert stored.feature.name == "Advanced Attribution"
    assert stored.model.version == 1
    assert (
        stored.roi_score,
        stored.workload_impact_score,
        stored.ease_of_use_score,
        stored.value_creation_score,
        stored.overall_score,
    ) == (D("89.01"), D("20.00"), D("52.00"), D("30.00"), D("53.05"))
    assert stored.persona_scores == {
        "solo_podcaster": "41.70",
        "podcast_network": "41.60",
        "agency": "48.00",
        "brand": "55.90",
    }
    assert (stored.rice, stored.ice, stored.wsjf) == (D("0.00"), D("208.00"), D("5.75"))
    roi = stored.explanation["roi"]
    assert roi["steps"]["monthly_value"] == "27000.0000"
    assert roi["steps"]["payback"] == "8.1000"
    assert roi["inputs"]["estimated_revenue_impact"] == "15000.0000"
    assert stored.explanation["overall"]["terms"]["roi"] == "31.1535"
    assert stored.explanation["defaulted_keys"] == ["effort_weeks", "confidence"]
    assert stored.created_by == user
    assert any("No live evidence" in r for r in stored.recommendations)


def test_an_existing_feature_is_scored_with_an_override_without_changing_it():
    f = feature("export", complexity="0.9", ui_complexity="0.9")
    score = services.score_feature("export", feature_metadata={"complexity": 0, "ui_complexity": 0})
    assert score.ease_of_use_score == D("100.00")
    f.refresh_from_db()
    assert f.metadata == {"complexity": "0.9", "ui_complexity": "0.9"}
    again = services.score_feature("export")
    assert again.ease_of_use_score == D("10.00")  # 100 * (1 - (0.36 + 0.54))


def test_unknown_metadata_keys_are_kept_and_listed_as_ignored():
    score = services.score_feature("f", "F", {"complexity": 0.5, "launch_quarter": "Q3"})
    assert score.ignored_keys == ["launch_quarter"]
    assert score.feature.metadata == {"complexity": "0.5", "launch_quarter": "Q3"}


def test_invalid_metadata_names_every_key_and_writes_nothing():
    with pytest.raises(MetadataError) as caught:
        services.score_feature("f", "F", {"complexity": 2, "effort_weeks": 0, "confidence": "x"})
    assert caught.value.problems == {
        "complexity": "must be at most 1",
        "effort_weeks": "must be greater than 0",
        "confidence": "must be a number",
    }
    assert not Feature.objects.exists()
    assert not FeatureScore.objects.exists()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("estimated_revenue_impact", -1, "must be at least 0"),
        ("estimated_revenue_impact", "lots", "must be a number"),
        ("estimated_revenue_impact", True, "must be a number"),
        ("estimated_revenue_impact", D("1000000000.01"), "must be at most 1000000000"),
        ("conversion_potential", D("1.01"), "must be at most 1"),
        ("conversion_potential", -0.1, "must be at least 0"),
        ("complexity", [0.5], "must be a number"),
        ("complexity", "NaN", "must be a finite number"),
        ("ui_complexity", 1.5, "must be at most 1"),
        ("time_savings_hours_per_month", -3, "must be at least 0"),
        ("time_savings_hours_per_month", "Infinity", "must be a finite number"),
        ("effort_weeks", 0, "must be greater than 0"),
        ("effort_weeks", 521, "must be at most 520"),
        ("effort_weeks", D("0.0000001"), "must be greater than 0"),
        ("confidence", 1.2, "must be at most 1"),
        ("target_personas", "brand", "must be a list of persona slugs"),
        ("target_personas", ["brand", "astronaut"], "unknown persona astronaut"),
        ("reach_accounts", 2.5, "must be a whole number"),
        ("reach_accounts", -1, "must be between 0 and 10000000"),
        ("addresses_health_factors", [1], "must be a list of health factor names"),
        ("support_tags", ["Billing"], "must be a list of ticket tags (lowercase)"),
        ("support_tags", ["t"] * 21, "must have at most 20 items"),
    ],
)
def test_each_key_is_validated(key, value, message):
    with pytest.raises(MetadataError) as caught:
        services.create_feature(key="f", name="F", metadata={key: value})
    assert caught.value.problems == {key: message}
    assert not Feature.objects.exists()


def test_valid_values_of_every_key_are_accepted_and_cleaned():
    f, ignored = services.create_feature(
        key="f",
        name="F",
        metadata={
            "estimated_revenue_impact": "1500.50",
            "conversion_potential": 1,
            "complexity": 0,
            "ui_complexity": 0.25,
            "time_savings_hours_per_month": 0,
            "effort_weeks": 0.5,
            "confidence": 1,
            "reach_accounts": 40,
            "target_personas": ["brand", "agency", "brand"],
            "addresses_health_factors": ["renewal_rate"],
            "support_tags": ["billing", "how-to"],
        },
    )
    assert ignored == []
    assert f.metadata["estimated_revenue_impact"] == "1500.5"
    assert f.metadata["effort_weeks"] == "0.5"
    assert f.metadata["target_personas"] == ["brand", "agency"]


def test_scores_keep_the_model_version_that_made_them():
    first = services.score_feature("f", "F", SEED_EXAMPLE)
    services.create_scoring_model(
        weights={"roi": "1", "workload_impact": "0", "ease_of_use": "0", "value_creation": "0"},
        persona_weights=first.model.persona_weights,
        constants=first.model.constants,
    )
    second = services.score_feature("f")
    first.refresh_from_db()
    assert (first.model.version, first.overall_score) == (1, D("53.05"))
    assert (second.model.version, second.overall_score) == (2, D("89.01"))
    assert ScoringModel.objects.get(version=1).active is False


def test_a_model_with_weights_not_summing_to_one_is_refused():
    current = services.active_model()
    with pytest.raises(InvalidInput) as caught:
        services.create_scoring_model(
            weights={
                "roi": "0.5",
                "workload_impact": "0",
                "ease_of_use": "0",
                "value_creation": "0",
            },
            persona_weights=current.persona_weights,
            constants=current.constants,
        )
    assert caught.value.field == "weights"
    assert ScoringModel.objects.count() == 1
    assert ScoringModel.objects.get().active


# --- evidence -----------------------------------------------------------------------------------


def test_tickets_count_reach_once_per_account_and_move_the_score():
    a, b = AccountFactory(), AccountFactory()
    for _ in range(3):
        make_ticket(account=a, tags=["billing"])
    make_ticket(account=b, tags=["billing", "bug"])
    make_ticket(account=b, tags=["bug"])  # another tag: not counted
    make_ticket(account=a, tags=["billing-v2"])  # a different tag that starts alike
    make_ticket(requester_email="listener@example.net", tags=["billing"])  # no account
    old = make_ticket(account=AccountFactory(), tags=["billing"])
    from tests.support.factories import age_ticket

    age_ticket(old, dt.timedelta(days=91))  # outside the 90 days
    score = services.score_feature(
        "invoices", "Invoices", {"support_tags": ["billing"], "time_savings_hours_per_month": 0}
    )
    tickets = score.evidence["tickets"]
    assert tickets["tickets"] == 5
    assert tickets["accounts"] == 2
    assert tickets["account_ids"] == sorted([a.id, b.id])
    assert tickets["tickets_per_month"] == "1.6667"  # 5 * 30 / 90
    assert score.explanation["effective_inputs"]["reach"] == "2.0000"
    # Workload: 5/3 tickets * 0.5 h = 5/6 h; ratio 5/6/40 = 1/48; 100 * (1/48)/(49/48) = 100/49
    assert score.workload_impact_score == D("2.04")
    assert score.explanation["workload_impact"]["score_without_evidence"] == "0.00"
    assert score.explanation["workload_impact"]["moved_by_evidence"] == "2.04"


def test_declared_reach_is_kept_when_larger_than_the_evidence():
    make_ticket(account=AccountFactory(), tags=["export"])
    score = services.score_feature("x", "X", {"support_tags": ["export"], "reach_accounts": 10})
    assert score.explanation["effective_inputs"]["reach"] == "10.0000"


def test_without_a_health_provider_the_evidence_says_so_and_changes_nothing():
    meta = {"addresses_health_factors": ["renewal_rate"], "estimated_revenue_impact": 1000}
    score = services.score_feature("renewals", "Renewals", meta)
    assert score.evidence["health"] == {
        "source": "account health",
        "used": False,
        "note": "no health data",
    }
    assert score.explanation["roi"]["moved_by_evidence"] == "0.00"


def test_revenue_at_risk_from_the_health_provider_raises_roi_and_reach():
    asked = []

    def provider(factors):
        asked.append(factors)
        return [
            {"account_id": 11, "monthly_revenue": D("3000.00")},
            {"account_id": 12, "monthly_revenue": D("1000.00")},
        ]

    evidence.set_health_provider(provider)
    meta = {
        "addresses_health_factors": ["renewal_rate"],
        "estimated_revenue_impact": 1000,
        "conversion_potential": 0.5,
        "effort_weeks": 2,
    }
    score = services.score_feature("renewals", "Renewals", meta)
    assert asked == [["renewal_rate"]]
    assert score.evidence["health"]["at_risk_revenue"] == "4000.00"
    assert score.evidence["health"]["accounts"] == 2
    # ROI: (1000 + 0.25 * 4000) * 1.5 * 12 / 20000 = 1.8 -> 64.29; without: 0.9 -> 47.37
    assert score.roi_score == D("64.29")
    assert score.explanation["roi"]["score_without_evidence"] == "47.37"
    assert score.explanation["roi"]["moved_by_evidence"] == "16.92"
    assert score.explanation["effective_inputs"]["reach"] == "2.0000"


def test_onboarding_lift_of_versions_listing_the_key_lowers_ui_complexity():
    version = deployment_services.create_onboarding_version(
        version_name="guided",
        rollout_percentage=50,
        target_personas=[],
        features=["checklist", "other"],
        min_sample_per_arm=10,
    )
    deployment_services.activate_version(version_id=version.id)
    version = OnboardingVersion.objects.get(pk=version.pk)
    at = version.activated_at + dt.timedelta(hours=1)
    persona = Persona.objects.get(slug="solo_podcaster")
    accounts = [AccountFactory(persona=persona) for _ in range(40)]
    rows = [
        OnboardingAssignment(
            account=a, version=version if i < 20 else None, persona=persona, assigned_at=at
        )
        for i, a in enumerate(accounts)
    ]
    OnboardingAssignment.objects.bulk_create(rows)
    # 14 of 20 complete with the version, 8 of 20 in control: lift 0.70 - 0.40 = 0.30
    done = [a for i, a in enumerate(accounts) if i < 14 or 20 <= i < 28]
    UsageEvent.objects.bulk_create(
        UsageEvent(
            account=a,
            type="onboarding_completed",
            occurred_at=at + dt.timedelta(days=2),
            idempotency_key=f"done-{a.id}",
        )
        for a in done
    )
    score = services.score_feature(
        "checklist", "Checklist", {"complexity": 0, "ui_complexity": "0.8"}
    )
    onboarding = score.evidence["onboarding"]
    assert onboarding["used"] is True
    assert onboarding["lift_abs"] == "0.3000"
    assert onboarding["versions"][0]["name"] == "guided"
    # UI 0.8 - 2 * 0.3 = 0.2; ease 100 * (1 - 0.6 * 0.2) = 88; without: 100 * (1 - 0.48) = 52
    assert score.ease_of_use_score == D("88.00")
    assert score.explanation["ease_of_use"]["moved_by_evidence"] == "36.00"
    other = services.score_feature("unrelated", "U", {"complexity": 0, "ui_complexity": "0.8"})
    assert other.evidence["onboarding"]["used"] is False
    assert other.ease_of_use_score == D("52.00")


# --- comparison -------------------------------------------------------------------------------


def test_compare_ranks_with_differences_and_the_deciding_dimension():
    services.score_feature("a", "A", SEED_EXAMPLE)  # 89.01, 20, 52, 30 -> 53.05
    services.score_feature(
        "b", "B", {**SEED_EXAMPLE, "complexity": 0, "ui_complexity": 0}
    )  # ease 100 -> 53.05 + 0.2 * 48 = 62.65
    services.score_feature("c", "C", {"time_savings_hours_per_month": 40})  # low ROI
    result = services.compare_features(["a", "b", "c"])
    assert [row["feature_id"] for row in result["features"]] == ["b", "a", "c"]
    assert result["leader"] == "b"
    a_row = result["features"][1]
    assert a_row["overall_score"] == D("53.05")
    assert a_row["difference_to_leader"]["overall"] == D("-9.60")
    assert a_row["difference_to_leader"]["ease_of_use"] == D("-48.00")
    assert a_row["difference_to_leader"]["roi"] == D("0.00")
    pair = next(p for p in result["pairs"] if (p["higher"], p["lower"]) == ("b", "a"))
    assert pair["deciding_dimension"] == "ease_of_use"
    assert pair["contributions"]["ease_of_use"] == D("9.60")
    pair = next(p for p in result["pairs"] if (p["higher"], p["lower"]) == ("a", "c"))
    assert pair["deciding_dimension"] == "roi"
    assert len(result["pairs"]) == 3


def test_compare_scores_features_that_have_no_score_yet_and_refuses_unknown_ones():
    feature("x", **SEED_EXAMPLE)
    feature("y")
    result = services.compare_features(["x", "y"])
    assert FeatureScore.objects.count() == 2
    assert result["features"][0]["feature_id"] == "x"
    with pytest.raises(NotFound):
        services.compare_features(["x", "nope"])
    with pytest.raises(InvalidInput):
        services.compare_features(["x", "x"])


# --- roadmap ----------------------------------------------------------------------------------


def _item(key, overall_weeks, depends_on=None):
    """An item whose overall score and effort are set through the metadata."""
    revenue, weeks = overall_weeks
    item = {
        "feature_id": key,
        "name": key.upper(),
        "metadata": {"estimated_revenue_impact": revenue, "effort_weeks": weeks},
    }
    if depends_on is not None:
        item["depends_on"] = depends_on
    return item


def test_roadmap_ranks_by_score_per_week_and_tiers_by_capacity():
    roadmap = services.score_feature_roadmap(
        [
            _item("big", (50000, 8)),
            _item("quick", (5000, 1)),
            _item("mid", (20000, 4)),
            _item("huge", (90000, 10)),
        ],
        Decimal(7),
    )
    order = [(i["feature_id"], i["tier"], i["cumulative_weeks"]) for i in roadmap.items]
    assert order == [
        ("quick", "now", "1.00"),
        ("mid", "now", "5.00"),
        ("big", "next", "13.00"),
        ("huge", "later", "23.00"),
    ]
    assert Roadmap.objects.get().capacity_weeks == Decimal(7)
    quick = roadmap.items[0]
    assert Decimal(quick["score_per_week"]) == Decimal(quick["overall_score"])


def test_a_feature_is_never_placed_before_its_dependency():
    roadmap = services.score_feature_roadmap(
        [
            _item("quick", (5000, 1), depends_on=["slow"]),
            _item("slow", (100, 12)),
            _item("other", (5000, 2)),
        ]
    )
    keys = [i["feature_id"] for i in roadmap.items]
    assert keys == ["other", "slow", "quick"]
    tiers = {i["feature_id"]: i["tier"] for i in roadmap.items}
    assert tiers == {"other": "now", "slow": "next", "quick": "next"}


def test_a_cycle_is_refused_naming_it_and_nothing_is_written():
    with pytest.raises(InvalidInput) as caught:
        services.score_feature_roadmap(
            [
                _item("a", (1, 1), depends_on=["b"]),
                _item("b", (1, 1), depends_on=["c"]),
                _item("c", (1, 1), depends_on=["a"]),
                _item("d", (1, 1)),
            ]
        )
    assert caught.value.detail == "depends_on has a cycle: a → b → c → a"
    assert not Feature.objects.exists()
    assert not Roadmap.objects.exists()


def test_stored_dependencies_are_used_when_an_item_gives_none():
    base = feature("base", estimated_revenue_impact=1, effort_weeks=1)
    top, _ = services.create_feature(
        key="top", name="Top", metadata={"estimated_revenue_impact": 90000}, depends_on=["base"]
    )
    roadmap = services.score_feature_roadmap([{"feature_id": "top"}, {"feature_id": "base"}])
    assert [i["feature_id"] for i in roadmap.items] == ["base", "top"]
    assert base.pk != top.pk


def test_a_dependency_outside_the_roadmap_that_has_not_launched_is_flagged():
    feature("auth")
    roadmap = services.score_feature_roadmap([_item("sso", (1000, 2), depends_on=["auth"])])
    assert roadmap.items[0]["waiting_on_unlaunched"] == ["auth"]
    with pytest.raises(NotFound):
        services.score_feature_roadmap([_item("sso", (1000, 2), depends_on=["ghost"])])


def test_update_refuses_a_dependency_cycle():
    a = feature("a")
    b, _ = services.create_feature(key="b", name="B", depends_on=["a"])
    with pytest.raises(InvalidInput) as caught:
        services.update_feature(feature_id=a.pk, depends_on=[b.pk])
    assert caught.value.detail == "depends_on has a cycle: a → b → a"
    assert list(a.depends_on.all()) == []


# --- status table -------------------------------------------------------------------------------

ALLOWED = {
    ("proposed", "planned"),
    ("proposed", "dropped"),
    ("planned", "proposed"),
    ("planned", "in_progress"),
    ("planned", "dropped"),
    ("in_progress", "planned"),
    ("in_progress", "launched"),
    ("in_progress", "dropped"),
    ("dropped", "proposed"),
}
STATUSES = ["proposed", "planned", "in_progress", "launched", "dropped"]


def test_the_status_table_is_exactly_the_spelled_out_pairs():
    assert Feature.STATUS_MACHINE.pairs() == ALLOWED


@pytest.mark.parametrize("frm", STATUSES)
@pytest.mark.parametrize("to", STATUSES)
def test_every_status_move_through_the_service(frm, to):
    user = staff_in("operations")
    f = feature("f")
    Feature.objects.filter(pk=f.pk).update(status=frm)
    if (frm, to) in ALLOWED:
        moved = services.change_feature_status(feature_id=f.pk, to=to, actor=user)
        assert moved.status == to
        last = Feature.history.filter(id=f.pk).latest("history_date")
        assert (last.status, last.history_user) == (to, user)
        if to == "launched":
            assert moved.launched_on == timezone.localdate()
    else:
        with pytest.raises(Conflict):
            services.change_feature_status(feature_id=f.pk, to=to, actor=user)
        assert Feature.objects.get(pk=f.pk).status == frm


def test_a_launch_in_the_future_is_refused():
    f = feature("f")
    Feature.objects.filter(pk=f.pk).update(status="in_progress")
    with pytest.raises(InvalidInput):
        services.change_feature_status(
            feature_id=f.pk, to="launched", launched_on=timezone.localdate() + dt.timedelta(days=1)
        )
    assert Feature.objects.get(pk=f.pk).status == "in_progress"


def test_feature_history_records_the_acting_user():
    user = staff_in("operations")
    f, _ = services.create_feature(key="f", name="F", actor=user)
    services.update_feature(feature_id=f.pk, name="F2", actor=user)
    rows = list(Feature.history.filter(id=f.pk).order_by("history_date"))
    assert [(r.name, r.history_user, r.history_type) for r in rows] == [
        ("F", user, "+"),
        ("F2", user, "~"),
    ]


# --- outcomes and calibration -------------------------------------------------------------------


def test_outcomes_only_for_launched_features_and_recording_twice_replaces():
    feature("f")
    with pytest.raises(Conflict):
        outcome("f")
    launched("g", launched_on=timezone.localdate() - dt.timedelta(days=30))
    outcome("g", adoption="0.2")
    outcome("g", adoption="0.3")
    assert list(Outcome.objects.values_list("adoption_rate", flat=True)) == [D("0.300000")]
    with pytest.raises(InvalidInput):
        outcome("g", on=timezone.localdate() - dt.timedelta(days=31))


def test_measured_outcome_computes_adoption_and_ticket_change():
    launch = timezone.localdate() - dt.timedelta(days=20)
    f = launched("export_v2", launched_on=launch, support_tags=["export"])
    users = [AccountFactory() for _ in range(4)]
    at = timezone.now() - dt.timedelta(days=5)
    UsageEvent.objects.bulk_create(
        [
            UsageEvent(account=a, type="login", occurred_at=at, idempotency_key=f"l{a.id}")
            for a in users
        ]
        + [
            UsageEvent(
                account=users[0],
                type="feature.export_v2.used",
                occurred_at=at,
                idempotency_key="u0",
            )
        ]
    )
    from tests.support.factories import age_ticket

    before = [make_ticket(account=users[1], tags=["export"]) for _ in range(3)]
    for t in before:
        age_ticket(t, dt.timedelta(days=25))  # in the 21 days before launch
    make_ticket(account=users[2], tags=["export"])  # after launch
    result = services.measure_outcome(
        feature_id=f.key,
        measured_on=timezone.localdate(),
        revenue_change=D("100.00"),
        time_saved_hours=D("2.00"),
    )
    assert result.source == "computed"
    assert result.adoption_rate == D("0.25")  # 1 of 4 active accounts
    assert result.ticket_change == 1 - 3
    assert result.details["span_days"] == 21


def _three_launched(outcomes):
    launch = timezone.localdate() - dt.timedelta(days=30)
    metas = [
        {"estimated_revenue_impact": 20000, "time_savings_hours_per_month": 0, "effort_weeks": 2},
        {"estimated_revenue_impact": 0, "time_savings_hours_per_month": 80, "effort_weeks": 2},
        {"estimated_revenue_impact": 500, "time_savings_hours_per_month": 5, "effort_weeks": 2},
        {"estimated_revenue_impact": 9000, "time_savings_hours_per_month": 40, "effort_weeks": 2},
    ]
    for n, ((adoption, revenue, tickets, hours), meta) in enumerate(
        zip(outcomes, metas, strict=False)
    ):
        launched(f"f{n}", launched_on=launch, **meta)
        outcome(f"f{n}", adoption=adoption, revenue=revenue, tickets=tickets, hours=hours)


def test_refit_needs_three_outcomes_and_keeps_the_model_saying_why():
    _three_launched([("0.5", "100", 0, "1"), ("0.2", "0", 0, "9")])
    result = services.refit_scoring_model()
    assert result["created"] is False
    assert "at least 3 launched features" in result["reason"]
    model = ScoringModel.objects.get()
    assert model.active and model.calibration["decision"] == "kept"
    assert model.calibration["n"] == 2


def test_a_refit_that_is_no_better_keeps_the_old_model():
    # Outcomes proportional to the current model's predictions (half of each): the current
    # weights, scaled, predict every held-out feature; a refit cannot do better.
    _three_launched([("0", "0", 0, "0")] * 4)
    model_weights = services.active_model().weights
    weights = [Fraction(D(model_weights[d])) for d in services.DIMENSIONS]
    for p in services.calibration_points():
        target = services._predict(weights, p["x"]) / 2
        # Adoption alone makes the outcome score: 100 * adoption / 3.
        services.record_outcome(
            feature_id=p["feature"].key,
            measured_on=timezone.localdate(),
            adoption_rate=q4(target * 3 / 100),
            revenue_change=D(0),
            ticket_change=0,
            time_saved_hours=D(0),
        )
    result = services.refit_scoring_model()
    assert result["created"] is False
    assert result["reason"].startswith("Kept v1: the refit predicts held-out features no better")
    assert ScoringModel.objects.count() == 1
    model = ScoringModel.objects.get()
    assert model.active
    assert model.calibration["decision"] == "kept"
    assert model.calibration["spearman"] == "1.0000"
    assert Decimal(model.calibration["loo_mse_current"]) < Decimal("0.01")
    assert Decimal(model.calibration["loo_mse_candidate"]) >= Decimal(
        model.calibration["loo_mse_current"]
    )


def test_a_refit_that_predicts_better_makes_a_new_active_version():
    # Outcomes driven by time saved only: the current weights (ROI first) rank them badly.
    _three_launched(
        [
            ("0", "0", 0, "0"),  # the ROI feature delivered nothing
            ("0", "0", 0, "80"),  # the workload feature saved 80 hours
            ("0", "0", 0, "5"),
            ("0", "0", 0, "40"),
        ]
    )
    user = staff_in("operations")
    result = services.refit_scoring_model(actor=user)
    assert result["created"] is True, result["reason"]
    new = ScoringModel.objects.get(active=True)
    assert new.version == 2
    assert sum(Decimal(w) for w in new.weights.values()) == 1
    assert Decimal(new.weights["workload_impact"]) > Decimal(new.weights["roi"])
    assert new.calibration["decision"] == "created"
    assert Decimal(new.calibration["loo_mse_candidate"]) < Decimal(
        new.calibration["loo_mse_current"]
    )
    old = ScoringModel.objects.get(version=1)
    assert old.active is False and old.calibration["decision"] == "replaced"
    last = ScoringModel.history.filter(id=new.pk).latest("history_date")
    assert last.history_user == user
    # Earlier scores still point at v1.
    assert set(FeatureScore.objects.values_list("model__version", flat=True)) == {1}


def test_a_new_version_from_float_weights_is_stored_exactly_and_scores_with_them():
    current = services.active_model()
    model = services.create_scoring_model(
        weights={"roi": 0.1, "workload_impact": 0.2, "ease_of_use": 0.3, "value_creation": 0.4},
        persona_weights=current.persona_weights,
        constants=current.constants,
    )
    assert model.weights == {
        "roi": "0.1",
        "workload_impact": "0.2",
        "ease_of_use": "0.3",
        "value_creation": "0.4",
    }
    score = services.score_feature("f", "F", SEED_EXAMPLE)
    # 0.1 * 89.01 + 0.2 * 20 + 0.3 * 52 + 0.4 * 30 = 8.901 + 4 + 15.6 + 12 = 40.501
    assert score.overall_score == D("40.50")
    with pytest.raises(InvalidInput):
        services.create_scoring_model(
            weights=model.weights,
            persona_weights={**current.persona_weights, "astronaut": model.weights},
            constants=current.constants,
        )
    assert ScoringModel.objects.get(active=True).version == 2
