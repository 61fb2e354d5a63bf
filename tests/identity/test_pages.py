"""Identity pages: roles, decisions (also through htmx), unmerge, settings form errors."""

from __future__ import annotations

import pytest

from identity.models import MatchCandidate, MatchSettings, MergeRecord
from profiles.models import Profile


def suggestion(probability: float = 0.9) -> MatchCandidate:
    a = Profile.objects.create(traits={"firstName": "Ann", "lastName": "<b>Lee</b>"})
    b = Profile.objects.create(traits={"firstName": "Anne", "lastName": "Lee"})
    return MatchCandidate.objects.create(
        profile_a=a,
        profile_b=b,
        probability=probability,
        weight=9.0,
        explanation={
            "fields": [
                {
                    "path": "lastName",
                    "left": "<b>lee</b>",
                    "right": "lee",
                    "level": "exact",
                    "weight": 8.2,
                },
            ],
            "prior_weight": -14.0,
        },
    )


@pytest.mark.django_db
def test_pages_refuse_users_without_a_role(staff_client, no_role_user):
    client = staff_client(no_role_user)
    for url in ["/identity/", "/identity/merges/", "/identity/settings/"]:
        assert client.get(url).status_code == 403


@pytest.mark.django_db
def test_queue_shows_each_field_escaped_and_compliance_gets_no_buttons(staff_client, compliance):
    c = suggestion()
    page = staff_client(compliance).get("/identity/").content.decode()
    assert "&lt;b&gt;lee&lt;/b&gt;" in page and "<b>lee</b>" not in page
    assert f"candidate-{c.pk}" in page and "Not the same person" not in page
    response = staff_client(compliance).post(
        "/identity/decide/", {"ids": c.pk, "decision": "merge"}
    )
    assert response.status_code == 403


@pytest.mark.django_db
def test_queue_filters_by_probability_and_rejects_a_bad_filter(staff_client, marketer):
    low, high = suggestion(0.82), suggestion(0.95)
    client = staff_client(marketer)
    page = client.get("/identity/?min_probability=0.9").content.decode()
    assert f"candidate-{high.pk}" in page and f"candidate-{low.pk}" not in page
    bad = client.get("/identity/?min_probability=0.9&max_probability=0.5")
    assert bad.status_code == 400 and "must not be below the minimum" in bad.content.decode()


@pytest.mark.django_db
def test_marketer_merges_through_htmx_and_bulk_rejects(staff_client, marketer):
    one, two, three = suggestion(), suggestion(), suggestion()
    client = staff_client(marketer)
    response = client.post(
        "/identity/decide/", {"ids": one.pk, "decision": "merge"}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 200 and "merged" in response.content.decode()
    # The page's "N waiting" is swapped out of band: two suggestions are left.
    assert '<span id="pending-count" hx-swap-oob="true">2</span>' in response.content.decode()
    one.refresh_from_db()
    assert one.status == "merged"
    response = client.post("/identity/decide/", {"id": [two.pk, three.pk], "decision": "reject"})
    assert response.status_code == 302
    assert set(MatchCandidate.objects.filter(status="rejected").values_list("pk", flat=True)) == {
        two.pk,
        three.pk,
    }
    bad = client.post(
        "/identity/decide/", {"ids": "x", "decision": "merge"}, HTTP_HX_REQUEST="true"
    )
    assert bad.status_code == 400 and "numbers" in bad.content.decode()


@pytest.mark.django_db
def test_unmerge_from_the_history_page(staff_client, admin_user):
    c = suggestion()
    client = staff_client(admin_user)
    client.post("/identity/decide/", {"ids": c.pk, "decision": "merge"})
    record = MergeRecord.objects.get()
    assert "Unmerge" in client.get("/identity/merges/").content.decode()
    client.post(f"/identity/merges/{record.pk}/unmerge/")
    record.refresh_from_db()
    assert record.unmerged_at is not None
    assert Profile.objects.get(pk=record.duplicate_id).merged_into_id is None


@pytest.mark.django_db
def test_settings_only_admins_save_and_errors_say_where(staff_client, admin_user, marketer):
    form = {
        "merge_threshold": "0.97",
        "review_threshold": "0.7",
        "trait_strategy": "recent",
        "survivor_rule": "oldest",
        "kind_priority": "user_id, email",
        "kind_limits": "user_id = 1",
        "blocked_values": "null\nre:^guest-\\d+$",
        "fields": "",
    }
    assert staff_client(marketer).post("/identity/settings/", form).status_code == 403
    client = staff_client(admin_user)
    assert client.post("/identity/settings/", form).status_code == 302
    saved = MatchSettings.objects.get(pk=1)
    assert saved.merge_threshold == 0.97 and saved.kind_limits == {"user_id": 1}
    assert saved.blocked_values == ["null", "re:^guest-\\d+$"]
    bad = client.post(
        "/identity/settings/",
        {**form, "review_threshold": "0.99", "blocked_values": "re:(", "kind_limits": "user_id"},
    )
    page = bad.content.decode()
    assert bad.status_code == 400
    assert "must not be above the merge threshold" in page
    assert "not a valid regular expression" in page
    assert "line 1: write &quot;name = value&quot;" in page


@pytest.mark.django_db
def test_rescan_from_the_settings_page_shows_progress_and_why_a_tiny_shop_merges_nothing(
    staff_client, marketer
):
    Profile.objects.create(traits={"firstName": "Ann", "lastName": "Lee", "birthday": "1990-01-02"})
    Profile.objects.create(traits={"firstName": "Ann", "lastName": "Lee", "birthday": "1990-01-02"})
    client = staff_client(marketer)
    from django.test.utils import CaptureQueriesContext  # noqa: F401

    response = client.post("/identity/rescans/", {"full": "1"})
    assert response.status_code == 302
    from identity.models import RescanJob
    from identity.tasks import identity_rescan_task

    job = RescanJob.objects.get()
    identity_rescan_task(job.pk)  # what the worker runs once the request commits
    progress = client.get("/identity/rescans/progress/").content.decode()
    assert "done" in progress and "0 merged · 1 queued" in progress
    assert "No automatic merges: only 2 profiles had traits to compare" in progress
    queue = client.get("/identity/").content.decode()
    assert "Automatic merges are paused:" in queue and "start at 200" in queue
