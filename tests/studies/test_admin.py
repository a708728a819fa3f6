"""Studies in admin: the list (fixed queries), a study page with definition, headline,
per-persona table and chart, the longitudinal view, CSV downloads and the run form."""

import csv
import io
import re

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from studies import services
from studies.models import Study
from tests.factories import staff_in
from tests.studies.factories import D, account_of_persona, campaign

pytestmark = pytest.mark.django_db
CHANGELIST = "admin:studies_study_changelist"


@pytest.fixture
def ops(client, ops_user):
    client.force_login(ops_user)
    return client


@pytest.fixture
def growth_runs():
    a = account_of_persona("solo_podcaster")
    campaign(a, D(2026, 1, 1), D(2026, 3, 31), "900.00")
    return [services.conduct_revenue_growth_study(D(2026, m, 1), D(2026, m, 28)) for m in (1, 2, 3)]


@pytest.mark.parametrize("rows", [1, 50])
def test_changelist_costs_a_fixed_number_of_queries(ops, django_assert_max_num_queries, rows):
    Study.objects.bulk_create(
        [
            Study(
                study_type="renewal_rate",
                period_start=D(2026, 1, 1),
                period_end=D(2026, 1, 31),
                status="completed",
                results={"renewal_rate": 0.25},
            )
            for _ in range(rows)
        ]
    )
    with django_assert_max_num_queries(12):
        response = ops.get(reverse(CHANGELIST))
    assert response.status_code == 200
    assert response.content.decode().count("renewal_rate = 0.25") == rows


def test_study_page_shows_definition_headline_personas_and_chart(ops, growth_runs):
    response = ops.get(reverse("admin:studies_study_change", args=[growth_runs[1].pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert "Definition (version 2026.11-2)" in page
    assert "recognised evenly over its days" in page
    assert "growth_rate" in page and "previous_revenue" in page
    assert '<th class="text-left pr-4 py-1">solo_podcaster</th>' in page
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in page
    assert "growth_rate over past runs up to this one" in page
    assert "Download CSV" in page


def test_cohort_study_page_draws_retention_curves(ops):
    a = account_of_persona("agency")
    campaign(a, D(2026, 1, 1), D(2026, 2, 28), "590.00")
    study = services.conduct_revenue_cohort_study(D(2026, 1, 1), D(2026, 2, 28))
    page = ops.get(reverse("admin:studies_study_change", args=[study.pk])).content.decode()
    assert "Net revenue retention by cohort" in page
    assert "2026-01" in page


def test_longitudinal_view_draws_every_metric_with_personas(ops, growth_runs):
    url = reverse("admin:studies_study_longitudinal_view")
    response = ops.get(url, {"study_type": "revenue_growth"})
    assert response.status_code == 200
    page = response.content.decode()
    for metric in ("revenue", "growth_rate", "median_account_growth", "accounts_flat"):
        assert f'id="chart-{metric}"' in page
    assert page.count("<polyline") >= 7  # every metric's "all" line has three points
    assert "solo_podcaster" in page and "brand" in page
    assert "2026-03-28" in page


def test_csv_download_of_one_study(ops, growth_runs):
    study = growth_runs[0]
    response = ops.get(reverse("admin:studies_study_download_csv", args=[study.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "study_id",
        "study_type",
        "period_start",
        "period_end",
        "segment",
        "group",
        "metric",
        "value",
    ]
    base = [str(study.pk), "revenue_growth", "2026-01-01", "2026-01-28", "all"]
    # 900.00 over 90 days: 28 days = 280.00
    assert [*base, "all", "revenue", "280.00"] in rows
    assert [*base, "solo_podcaster", "revenue", "280.00"] in rows
    assert [*base, "brand", "growth_rate", ""] in rows


def test_csv_download_of_selected_studies(ops, growth_runs):
    response = ops.post(
        reverse(CHANGELIST),
        {
            "action": "download_selected_csv",
            ACTION_CHECKBOX_NAME: [s.pk for s in growth_runs[:2]],
        },
    )
    assert response.status_code == 200
    ids = {row[0] for row in csv.reader(io.StringIO(response.content.decode()))}
    assert ids == {"study_id", str(growth_runs[0].pk), str(growth_runs[1].pk)}


def test_run_form_runs_a_study(ops, ops_user):
    url = reverse("admin:studies_study_run_study")
    assert ops.get(url).status_code == 200
    response = ops.post(
        url,
        {
            "study_type": "renewal_rate",
            "period_start": "2026-01-01",
            "period_end": "2026-01-31",
            "persona_segment": "agency",
        },
    )
    study = Study.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:studies_study_change", args=[study.pk])
    assert (study.status, study.segment_slug, study.requested_by) == (
        "completed",
        "agency",
        ops_user,
    )


def test_run_form_shows_a_bad_period_on_its_field_and_writes_nothing(ops):
    response = ops.post(
        reverse("admin:studies_study_run_study"),
        {"study_type": "renewal_rate", "period_start": "2026-02-01", "period_end": "2026-01-31"},
    )
    assert response.status_code == 200
    assert response.context["form"].errors == {"period_end": ["period_end is before period_start."]}
    assert Study.objects.count() == 0


def test_readers_cannot_run_and_others_cannot_see(client, growth_runs):
    client.force_login(staff_in("compliance"))
    assert client.get(reverse(CHANGELIST)).status_code == 200
    assert client.get(reverse("admin:studies_study_run_study")).status_code == 403
    assert Study.objects.count() == 3
    client.force_login(staff_in("support_l1"))
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert (
        client.get(reverse("admin:studies_study_change", args=[growth_runs[0].pk])).status_code
        == 403
    )


def test_history_page_lists_the_transitions(ops, growth_runs):
    response = ops.get(reverse("admin:studies_study_history", args=[growth_runs[0].pk]))
    assert response.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode()))
    assert "3 entries" in text  # created (queued), running, completed
    # Unfold's history page draws the change as "old → new" with an arrow icon.
    assert "Status: queued arrow_right_alt running" in text
    assert "Status: running arrow_right_alt completed" in text


@pytest.mark.parametrize(
    "query", ["period_end__year=9999", "period_end__year=99999999999999999999999"]
)
def test_out_of_range_date_filters_redirect_instead_of_500(ops, query):
    response = ops.get(reverse(CHANGELIST) + "?" + query)
    assert response.status_code == 302
    assert response["Location"].endswith("?e=1")
