"""The clustering and propensity models page in a real browser: a challenger says why it does
not serve, beside the serving run's figure and the interval; one click puts a run back."""

import pytest

from segments import services
from segments.models import ModelRun
from tests.segments.test_models import shop  # noqa: F401 (fixture)

pytestmark = pytest.mark.e2e


def _trained(kind, now):
    return services.model_train(run_id=ModelRun.objects.create(kind=kind).pk, now=now)


def test_a_marketer_reads_why_a_challenger_waits_and_rolls_back_in_one_click(
    page,
    live_server,
    marketer,
    login,
    shot,
    shop,  # noqa: F811
):
    first = _trained("cluster", shop)
    second = _trained("cluster", shop)
    assert second.is_active, second.decision
    login(marketer)
    page.goto(f"{live_server.url}/segments/models/")
    row = page.locator(f"#run-{second.pk}")
    assert "same configuration, refitted" in row.inner_text()
    assert f"the serving run #{first.pk}'s configuration refitted" in page.content()
    shot("segment-models")
    page.locator(f"#run-{first.pk}").get_by_role("button", name="Serve again").click()
    page.wait_for_selector(f"text=Run #{first.pk} serves again.")
    first.refresh_from_db()
    assert first.is_active and first.decision.startswith("Serves by rollback")
    assert "Serves by rollback" in page.locator(f"#run-{first.pk}").inner_text()
    shot("segment-models-rolled-back")
