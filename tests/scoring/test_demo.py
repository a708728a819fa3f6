"""seed_demo leaves a dozen scored features, a roadmap, three launched features with outcomes
and a model calibrated against them; a second run changes nothing."""

import datetime as dt

import pytest
from django.utils import timezone

from opsplatform.demo import DemoContext
from opsplatform.demo import seed_demo as seed_core
from scoring import demo
from scoring.models import Feature, FeatureScore, Outcome, Roadmap, ScoringModel
from support import demo as support_demo

pytestmark = pytest.mark.django_db


def test_demo_leaves_scores_a_roadmap_outcomes_and_a_calibrated_model():
    ctx = DemoContext(seed=7, accounts_wanted=30, as_of=timezone.localdate(), write=lambda *a: None)
    seed_core(ctx)
    support_demo.seed_demo(ctx)
    demo.seed_demo(ctx)

    assert Feature.objects.count() == 12
    assert FeatureScore.objects.values("feature").distinct().count() == 12
    launched = Feature.objects.filter(status="launched")
    assert set(launched.values_list("key", flat=True)) == {
        "csv_export_v2",
        "team_access",
        "invoice_clarity",
    }
    assert {f.launched_on for f in launched} == {timezone.localdate() - dt.timedelta(days=60)}
    assert Outcome.objects.count() == 3
    roadmap = Roadmap.objects.get()
    assert len(roadmap.items) == 9  # the open features
    positions = {i["feature_id"]: i["position"] for i in roadmap.items}
    assert positions["advanced_attribution"] < positions["smart_links"]
    assert positions["smart_links"] < positions["renewal_assistant"]
    active = ScoringModel.objects.get(active=True)
    assert active.calibration["n"] == 3
    assert active.calibration["reason"]
    # Tickets tagged in the demo moved at least one score.
    assert FeatureScore.objects.filter(evidence__tickets__used=True).exists()

    counts = (Feature.objects.count(), FeatureScore.objects.count(), Roadmap.objects.count())
    demo.seed_demo(ctx)
    assert (
        Feature.objects.count(),
        FeatureScore.objects.count(),
        Roadmap.objects.count(),
    ) == counts
