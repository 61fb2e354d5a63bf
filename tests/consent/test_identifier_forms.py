"""An identifier named in another valid form than the one the identity index holds (`0049 151 …`
for `+49 151 …`, `Name@Example.COM ` for `name@example.com`) is suppressed at ingestion and
erased as the index sees it: people are indexed by real ingestion and the pipeline, and
requests go through the privacy-request services."""

import pytest

from cdp import pipeline
from consent import services
from consent.hashing import identifier_hash
from consent.models import ErasureTombstone, RequestStatus, Suppression
from identity.models import Identity
from profiles.ingestion import ingest_messages
from profiles.models import DroppedMessageCount, Event, Profile

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _german_numbers(settings):
    """Numbers written nationally (`0151 …`) or after the prefix 00 are read as German."""
    settings.PHONE_DEFAULT_REGION = "DE"


def ingest(source, *messages) -> list[int]:
    return ingest_messages(source=source, messages=list(messages)).event_ids


def indexed_person(source, *, user_id: str, email: str, phone: str) -> Profile:
    """A person as ingestion and the pipeline index them, from one identify call."""
    event_ids = ingest(
        source,
        {
            "type": "identify",
            "userId": user_id,
            "messageId": f"identify-{user_id}",
            "traits": {"email": email, "phone": phone},
        },
    )
    pipeline.events_process(event_ids=event_ids)
    return Profile.objects.get(identities__kind="user_id", identities__value=user_id)


def request_processed(compliance, regulation_type: str, subject: dict[str, str]):
    request = services.privacy_request_create(regulation_type=regulation_type, subject=subject)
    services.privacy_request_verify(request=request, actor=compliance, note="identity checked")
    return services.privacy_request_process(request=request)


@pytest.mark.parametrize(
    ("kind", "indexed", "named", "resent"),
    [
        ("phone", "+4915112345678", "0049 151 12345678", ["0151 12345678", "+49 (151) 1234-5678"]),
        ("email", "anna.lee@example.com", "Anna.Lee@Example.COM ", [" ANNA.LEE@example.com"]),
    ],
)
def test_a_subject_named_in_another_form_is_suppressed_in_every_form_at_ingestion(
    source, compliance, kind, indexed, named, resent
):
    person = indexed_person(
        source, user_id="u-anna", email="anna.lee@example.com", phone="+49 151 12345678"
    )
    assert Identity.objects.get(profile=person, kind=kind).value == indexed

    done = request_processed(compliance, "SUPPRESS_ONLY", {kind: named})

    assert done.status == RequestStatus.FINISHED
    assert Suppression.objects.filter(identifier_hash=identifier_hash(kind, indexed)).exists()
    stored = Event.objects.count()
    # From people the index does not know yet, carrying the identifier in the other forms.
    ingest(
        source,
        *(
            {
                "type": "track",
                "anonymousId": f"someone-new-{n}",
                "event": "Product Viewed",
                "messageId": f"resent-{n}",
                "context": {"traits": {kind: value}},
            }
            for n, value in enumerate(resent)
        ),
    )
    assert Event.objects.count() == stored
    assert DroppedMessageCount.objects.get(reason="suppressed").count == len(resent)


@pytest.mark.parametrize(
    ("regulation_type", "kind", "indexed", "named"),
    [
        ("DELETE_ONLY", "phone", "+4915112345678", "0049151 1234 5678"),
        ("SUPPRESS_WITH_DELETE", "email", "anna.lee@example.com", " Anna.Lee@Example.COM"),
    ],
)
def test_a_subject_named_in_another_form_is_erased_as_the_index_holds_it(
    source, compliance, regulation_type, kind, indexed, named
):
    person = indexed_person(
        source, user_id="u-anna", email="anna.lee@example.com", phone="+49 151 12345678"
    )
    keeper = indexed_person(
        source, user_id="u-keep", email="keep@example.com", phone="+49 151 99988877"
    )

    done = request_processed(compliance, regulation_type, {kind: named})

    assert done.status == RequestStatus.FINISHED
    assert not Profile.objects.filter(pk=person.pk).exists()
    assert not Identity.objects.filter(
        value__in=["u-anna", "anna.lee@example.com", "+4915112345678"]
    ).exists()
    assert not Event.objects.filter(user_id="u-anna").exists()
    assert ErasureTombstone.objects.filter(identifier_hash=identifier_hash(kind, indexed)).exists()
    assert Profile.objects.filter(pk=keeper.pk).exists()
    assert Identity.objects.filter(profile=keeper).count() == 3


def test_suppress_with_delete_also_drops_the_subject_sent_again_in_the_indexed_form(
    source, compliance
):
    indexed_person(source, user_id="u-anna", email="anna.lee@example.com", phone="+49 151 12345678")
    request_processed(compliance, "SUPPRESS_WITH_DELETE", {"phone": "0049 151 12345678"})

    ingest(
        source,
        {"type": "identify", "userId": "u-anna", "messageId": "back-1"},
        {
            "type": "identify",
            "userId": "u-other",
            "messageId": "back-2",
            "traits": {"phone": "+4915112345678"},
        },
    )
    assert not Event.objects.filter(message_id__in=["back-1", "back-2"]).exists()
    assert DroppedMessageCount.objects.get(reason="suppressed").count == 2


@pytest.mark.parametrize(
    "subject",
    [
        {"phone": "0049 151 12345678"},  # in the US, 00 is no international prefix
        {"phone": "+1 555 555 0123"},  # a possible number, but no valid one
        {"email": "anna lee@example.com"},
        {"email": "@example.com"},
    ],
)
def test_a_subject_the_index_could_never_hold_is_refused_not_hashed(settings, subject):
    settings.PHONE_DEFAULT_REGION = "US"
    with pytest.raises(services.PrivacyRequestError, match=r"^subject: "):
        services.privacy_request_create(regulation_type="SUPPRESS_ONLY", subject=subject)
    assert not Suppression.objects.exists()
