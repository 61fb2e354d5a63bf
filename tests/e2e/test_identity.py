"""The identity review queue in a real browser: two profiles side by side, merge one pair
through htmx, bulk-reject the rest, then undo the merge from the history."""

import pytest

from identity.models import MatchCandidate, MergeRecord
from profiles.models import Profile

pytestmark = pytest.mark.e2e


def suggestion(first: str, last: str, probability: float) -> MatchCandidate:
    a = Profile.objects.create(
        traits={"firstName": first, "lastName": last, "email": f"{first}@x.org"}
    )
    b = Profile.objects.create(traits={"firstName": first[:-1], "lastName": last})
    return MatchCandidate.objects.create(
        profile_a=a,
        profile_b=b,
        probability=probability,
        weight=8.5,
        explanation={
            "fields": [
                {
                    "path": "firstName",
                    "left": first.lower(),
                    "right": first[:-1].lower(),
                    "level": "jaro_winkler>=0.92",
                    "weight": 5.1,
                },
                {
                    "path": "lastName",
                    "left": last.lower(),
                    "right": last.lower(),
                    "level": "exact",
                    "weight": 9.4,
                },
                {
                    "path": "email",
                    "left": f"{first.lower()}@x.org",
                    "right": "",
                    "level": "null",
                    "weight": 0.0,
                },
            ],
            "prior_weight": -6.0,
        },
    )


def test_review_queue_merge_reject_and_unmerge(page, live_server, marketer, login, shot):
    first = suggestion("Roberta", "Lindqvist", 0.96)
    second = suggestion("Marcus", "Okafor", 0.88)
    third = suggestion("Ingrid", "Novak", 0.83)
    login(marketer)
    page.goto(f"{live_server.url}/identity/")
    card = page.locator(f"#candidate-{first.pk}")
    # A marketer sees the names masked (access.pii).
    assert "l••••••••" in card.inner_text() and "lindqvist" not in card.inner_text()
    assert card.locator("tr.agree").count() == 2
    shot("identity-review-queue")

    card.get_by_role("button", name="Merge").click()
    page.wait_for_selector(f"#candidate-{first.pk}.decided")
    assert "merged" in page.locator(f"#candidate-{first.pk}").inner_text()

    page.check(f"input[name=id][value='{second.pk}']")
    page.check(f"input[name=id][value='{third.pk}']")
    page.locator(".bulkbar").get_by_role("button", name="Not the same person").click()
    page.wait_for_selector(".messages")
    assert "2 suggestion(s) marked as different people" in page.inner_text(".messages")
    assert set(MatchCandidate.objects.values_list("status", flat=True)) == {"merged", "rejected"}

    page.goto(f"{live_server.url}/identity/merges/")
    shot("identity-merge-history")
    page.get_by_role("button", name="Unmerge").click()
    page.wait_for_selector(".messages")
    assert "apart again" in page.inner_text(".messages")
    assert MergeRecord.objects.get().unmerged_at is not None


def test_settings_page_shows_rules_and_rescans(page, live_server, admin_user, login, shot):
    login(admin_user)
    page.goto(f"{live_server.url}/identity/settings/")
    page.fill("#id_merge_threshold", "0.5")
    page.fill("#id_review_threshold", "0.9")
    page.get_by_role("button", name="Save rules").click()
    assert "must not be above the merge threshold" in page.inner_text("form.settings-form")
    shot("identity-settings")
