"""A compliance officer takes an erasure request through the console in a real browser."""

from django.utils import timezone

from identity.models import Identity
from profiles.models import Event, Profile


def _person(source) -> Profile:
    profile = Profile.objects.create(traits={"email": "forget.me@example.com", "name": "Forget Me"})
    Identity.objects.create(kind="email", value="forget.me@example.com", profile=profile)
    Identity.objects.create(kind="user_id", value="user-forget-42", profile=profile)
    now = timezone.now()
    Event.objects.bulk_create(
        Event(
            source=source,
            message_id=f"m-{i}",
            type="track",
            event="Product Viewed",
            user_id="user-forget-42",
            timestamp=now,
            received_at=now,
            context={"traits": {"email": "forget.me@example.com"}},
            payload={"userId": "user-forget-42"},
            profile=profile,
        )
        for i in range(25)
    )
    return profile


def test_compliance_opens_the_queue_completes_an_erasure_and_sees_the_verification(
    page, live_server, compliance, login, shot, source
):
    profile = _person(source)
    login(compliance)
    page.click("nav.mainnav >> text=Privacy")
    page.wait_for_url(f"{live_server.url}/privacy/")
    assert page.locator("#privacy-queue").is_visible()

    page.select_option("#id_regulation_type", "DELETE_ONLY")
    page.select_option("#id_subject_kind", "email")
    page.fill("#id_subject_value", "Forget.Me@example.com")
    page.click("text=Create request")
    page.wait_for_url("**/privacy/requests/*/")
    assert page.locator("[data-status=NOT_VERIFIED]").first.is_visible()
    shot("privacy-request-not-verified")

    page.fill("#id_note", "Matched the passport copy the customer sent")
    page.click("text=Mark identity verified and run")
    page.wait_for_selector("[data-verification=clean]")
    assert page.locator("#request-status [data-status=FINISHED]").is_visible()
    assert "kept only hashed" in page.content()
    shot("privacy-request-erased")

    assert not Profile.objects.filter(pk=profile.pk).exists()
    assert not Event.objects.filter(user_id="user-forget-42").exists()

    page.click("text=← Requests")
    page.click("a.filter-chip >> text=Finished")
    assert page.locator("#privacy-queue [data-status=FINISHED]").count() == 1
    shot("privacy-queue")
