"""An operator dry-runs, executes and rolls back a deployment from its admin page."""

import pytest

from deployments import services
from deployments.models import Deployment
from tests.factories import PASSWORD, AccountFactory, staff_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_operator_dry_runs_executes_and_rolls_back(page):
    for _ in range(3):
        AccountFactory()
    operator = staff_in("operations", username="olivia")
    deployment = services.create_deployment(
        version="3.2.0", strategy="rolling", rollout_percentage=5
    )
    page.goto("/admin/login/")
    page.fill("#id_username", operator.username)
    page.fill("#id_password", PASSWORD)
    page.press("#id_password", "Enter")  # the stock and the Unfold login forms alike
    page.wait_for_url("**/admin/")
    change = f"/admin/deployments/deployment/{deployment.pk}/change/"

    page.goto(change)
    page.get_by_role("link", name="Dry run").click()
    page.wait_for_selector("text=Dry run of 3.2.0")
    assert page.get_by_text("nothing was written").is_visible()
    assert Deployment.objects.get(pk=deployment.pk).status == "pending"

    page.goto(change)
    page.get_by_role("link", name="Execute").click()
    page.get_by_role("button", name="Execute").click()
    page.wait_for_selector("text=Execute deployment: done.")
    deployment.refresh_from_db()
    assert (deployment.status, deployment.current_percentage) == ("in_progress", 5)

    page.get_by_role("link", name="Roll back").click()
    page.get_by_label("Reason").fill("Error rate doubled in the canary")
    page.get_by_role("button", name="Roll back").click()
    page.wait_for_selector("text=Rolled back: nobody is exposed any more.")
    deployment.refresh_from_db()
    assert (deployment.status, deployment.current_percentage) == ("rolled_back", 0)
    assert deployment.rollback_reason == "Error rate doubled in the canary"
    assert deployment.history.latest().history_user == operator
