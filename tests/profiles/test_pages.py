"""The profile explorer and the profile 360° page, through the Django test client."""

import html
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from django.utils.text import capfirst

from identity.models import Identity
from profiles.models import Event, Profile
from segments import conditions

pytestmark = pytest.mark.django_db

PAGES = ["/profiles/", "/profiles/{id}/", "/profiles/{id}/events/"]


def make_profile(traits=None, identities=(), **fields) -> Profile:
    # A person who has sent an event: the explorer hides profiles without any (bot visitors).
    fields.setdefault("event_count", 1)
    profile = Profile.objects.create(traits=traits or {}, **fields)
    for kind, value in identities:
        Identity.objects.create(kind=kind, value=value, profile=profile)
    return profile


def make_events(profile, source, count, start=None, **fields) -> list[Event]:
    start = start or timezone.now() - timedelta(days=1)
    events = [
        Event(
            source=source,
            message_id=f"{profile.pk}-{n}-{fields.get('event', '')}",
            type=fields.get("type", "track"),
            event=fields.get("event", f"Step {n}"),
            timestamp=start + timedelta(minutes=n),
            received_at=start + timedelta(minutes=n),
            properties=fields.get("properties", {"n": n}),
            payload={},
            profile=profile,
        )
        for n in range(count)
    ]
    return Event.objects.bulk_create(events)


@pytest.fixture
def anna(source) -> Profile:
    profile = make_profile(
        traits={"firstName": "Anna", "lastName": "Smith", "email": "anna@example.org"},
        identities=[
            ("user_id", "u-42"),
            ("anonymous_id", "anon-7f3a"),
            ("email", "anna@example.org"),
            ("phone", "+14155552671"),
        ],
        context={"os": {"name": "iOS", "version": "17.4"}, "locale": "en-US"},
        event_count=3,
        order_count=2,
        revenue=Decimal("120.50"),
    )
    make_events(profile, source, 3)
    return profile


@pytest.fixture
def bob() -> Profile:
    return make_profile(traits={"name": "Bob Jones"}, identities=[("email", "bob@example.org")])


def event_ids(body: str) -> list[int]:
    return [int(found) for found in re.findall(r'data-event-id="(\d+)"', body)]


def next_page_url(body: str) -> str | None:
    """The htmx URL of the "Load older events" button, if the page has one."""
    found = re.search(r'hx-get="([^"]+/events/\?cursor=[^"]+)"', body)
    return html.unescape(found.group(1)) if found else None


def result_ids(response) -> list[int]:
    return [profile.pk for profile in response.context["page"].profiles]


# --- who may see the pages -------------------------------------------------------------------


@pytest.mark.parametrize("page", PAGES)
def test_profile_pages_send_an_anonymous_visitor_to_the_login_page(client, anna, page):
    response = client.get(page.format(id=anna.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("page", PAGES)
def test_profile_pages_refuse_a_user_without_a_role(staff_client, no_role_user, anna, page):
    response = staff_client(no_role_user).get(page.format(id=anna.pk))
    assert response.status_code == 403
    assert "Your account has no role yet" in response.content.decode()
    assert "Anna" not in response.content.decode()


@pytest.mark.parametrize("role", ["marketer", "compliance", "admin_user"])
@pytest.mark.parametrize("page", PAGES)
def test_profile_pages_open_for_every_staff_role(staff_client, request, role, anna, page):
    user = request.getfixturevalue(role)
    assert staff_client(user).get(page.format(id=anna.pk)).status_code == 200


def test_the_navigation_links_to_profiles_for_staff_and_hides_it_without_a_role(
    staff_client, marketer, no_role_user
):
    assert 'href="/profiles/"' in staff_client(marketer).get("/").content.decode()
    page = staff_client(no_role_user).get("/", follow=False)
    assert b'href="/profiles/"' not in page.content


# --- explorer --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    ["anna", "Anna Smith", "smi ann", "anna@example.org", "ANNA@Example.org", "u-42", "anon-7f3a"],
)
def test_search_finds_a_profile_by_name_email_user_id_or_anonymous_id(
    staff_client, marketer, anna, bob, query
):
    response = staff_client(marketer).get("/profiles/", {"q": query})
    assert response.status_code == 200
    assert result_ids(response) == [anna.pk]


def test_search_finds_a_profile_by_its_id_and_by_a_phone_number_as_typed(
    staff_client, marketer, anna, bob
):
    client = staff_client(marketer)
    assert result_ids(client.get("/profiles/", {"q": str(bob.pk)})) == [bob.pk]
    assert result_ids(client.get("/profiles/", {"q": "(415) 555-2671"})) == [anna.pk]
    assert result_ids(client.get("/profiles/", {"q": "+1 415 555 2671"})) == [anna.pk]
    assert result_ids(client.get("/profiles/", {"q": "011 1 415 555 2671"})) == [anna.pk]


def test_a_search_that_can_be_no_identifier_is_no_exact_match_for_everyone(anna, bob):
    from profiles.selectors.search import profile_search

    found, exact = profile_search(query="x" * 400)  # longer than any identifier
    assert not exact and list(found) == []


def test_search_matches_the_name_trait_and_shows_nothing_for_a_stranger(
    staff_client, marketer, anna, bob
):
    client = staff_client(marketer)
    assert result_ids(client.get("/profiles/", {"q": "jones"})) == [bob.pk]
    response = client.get("/profiles/", {"q": "nobody-like-this"})
    assert result_ids(response) == []
    assert "No profile matches" in response.content.decode()


def test_search_leaves_out_profiles_merged_into_another(staff_client, marketer, anna):
    make_profile(traits={"firstName": "Anna", "lastName": "Smith"}, merged_into=anna)
    assert result_ids(staff_client(marketer).get("/profiles/", {"q": "anna"})) == [anna.pk]


def test_an_htmx_search_gets_only_the_results_fragment(staff_client, marketer, anna):
    response = staff_client(marketer).get(
        "/profiles/", {"q": "anna"}, headers={"HX-Request": "true"}
    )
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith('<section id="results"')
    assert "<html" not in body
    assert f'href="/profiles/{anna.pk}/"' in body


def test_htmx_history_restore_gets_the_whole_page(staff_client, marketer, anna):
    response = staff_client(marketer).get(
        "/profiles/",
        {"q": "anna"},
        headers={"HX-Request": "true", "HX-History-Restore-Request": "true"},
    )
    assert "<html" in response.content.decode()


def test_an_exact_identifier_wins_over_names_that_contain_it(staff_client, marketer, anna):
    make_profile(traits={"name": "Fan of u-42"})
    response = staff_client(marketer).get("/profiles/", {"q": "u-42"})
    assert result_ids(response) == [anna.pk]
    assert "exact match" in response.content.decode()


def test_a_name_search_past_the_time_limit_asks_for_a_more_specific_search(
    staff_client, marketer, anna, monkeypatch
):
    from django.db.models.expressions import RawSQL

    from profiles.selectors import search

    # A query that sleeps for half a second cannot finish within 10 ms.
    monkeypatch.setattr(search, "SEARCH_TIMEOUT_MS", 10)
    slow = RawSQL("SELECT id FROM profiles_profile, pg_sleep(0.5)", [])
    monkeypatch.setattr(search, "_name_matches", lambda query: Profile.objects.filter(pk__in=slow))
    response = staff_client(marketer).get("/profiles/", {"q": "nobody"})
    assert response.status_code == 200
    assert "That search is taking too long" in response.content.decode()


def test_the_explorer_pages_by_keyset_older_and_back_newer(staff_client, marketer):
    profiles = [make_profile(traits={"name": f"Person {n}"}) for n in range(30)]
    newest_first = [p.pk for p in reversed(profiles)]
    client = staff_client(marketer)

    first = client.get("/profiles/")
    assert result_ids(first) == newest_first[:25]
    page = first.context["page"]
    assert page.prev_before is None
    assert page.next_after == newest_first[24]

    second = client.get("/profiles/", {"after": page.next_after})
    assert result_ids(second) == newest_first[25:]
    assert second.context["page"].next_after is None

    back = client.get("/profiles/", {"before": second.context["page"].prev_before})
    assert result_ids(back) == newest_first[:25]
    assert back.context["page"].prev_before is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"after": "abc"}, "after"),
        ({"before": "-3"}, "before"),
        ({"after": "5", "before": "9"}, "either after or before"),
        ({"q": "x" * 201}, "q"),
    ],
)
def test_bad_explorer_parameters_get_400_saying_which(staff_client, marketer, params, message):
    response = staff_client(marketer).get("/profiles/", params)
    assert response.status_code == 400
    assert message in response.content.decode()


def test_the_explorer_runs_a_fixed_number_of_queries(
    staff_client, marketer, source, django_assert_num_queries
):
    for n in range(30):
        make_profile(traits={"name": f"P{n}"}, identities=[("user_id", f"u{n}")])
    client = staff_client(marketer)
    client.get("/profiles/")  # warm the session and the roles lookup
    # session, user, roles; then savepoint, statement timeout, exact-identifier check, the
    # total count, the profiles page, their identities, release (the test's transaction makes
    # atomic a savepoint); the sources of the filter's list
    with django_assert_num_queries(11):
        response = client.get("/profiles/", {"q": "p"})
    assert len(result_ids(response)) == 25


# --- profile 360° ----------------------------------------------------------------------------


def test_the_profile_page_shows_traits_features_identities_context_and_timeline(
    staff_client, admin_user, anna
):
    body = staff_client(admin_user).get(f"/profiles/{anna.pk}/").content.decode()
    for text in [
        "Anna Smith",
        "anna@example.org",
        "u-42",
        "anon-7f3a",
        "+14155552671",
        "120.50",  # revenue
        "60.25",  # average order
        "OS name",
        "iOS",
        "en-US",
        "Step 2",
        "Step 0",
        "Start of the timeline",
    ]:
        assert text in body, text


def test_the_profile_page_names_computed_features_as_segment_conditions_do(
    staff_client, admin_user, anna
):
    body = staff_client(admin_user).get(f"/profiles/{anna.pk}/").content.decode()
    for name in ("frequency", "monetary", "event_count", "first_order_at"):
        assert f"<dt>{capfirst(conditions.COMPUTED_WORDS[name])}</dt>" in body, name


def test_a_marketer_sees_personal_data_masked_on_the_profile_page(staff_client, marketer, anna):
    body = staff_client(marketer).get(f"/profiles/{anna.pk}/").content.decode()
    for personal in ["Anna Smith", "anna@example.org", "+14155552671"]:
        assert personal not in body, personal
    assert "a•••@e•••.org" in body
    assert "u-42" not in body  # identifiers are personal data too


def test_compliance_sees_personal_data_unmasked(staff_client, compliance, anna):
    body = staff_client(compliance).get(f"/profiles/{anna.pk}/").content.decode()
    assert "anna@example.org" in body and "+14155552671" in body


def test_traits_written_by_outsiders_are_escaped(staff_client, admin_user, source):
    profile = make_profile(traits={"name": "<script>alert(1)</script>", "note": "<b>x</b>"})
    make_events(profile, source, 1, properties={"title": "<img src=x onerror=alert(1)>"})
    body = staff_client(admin_user).get(f"/profiles/{profile.pk}/").content.decode()
    assert "<script>alert(1)</script>" not in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body
    assert "<img src=x" not in body
    assert "<b>x</b>" not in body


def test_a_profile_without_data_shows_empty_states(staff_client, marketer):
    profile = make_profile()
    body = staff_client(marketer).get(f"/profiles/{profile.pk}/").content.decode()
    assert "Anonymous visitor" in body
    assert "No traits yet" in body
    assert "No identifiers linked" in body
    assert "No events on this profile yet" in body


def test_a_merged_away_profile_redirects_to_its_survivor_along_the_chain(
    staff_client, marketer, anna
):
    middle = make_profile(merged_into=anna)
    oldest = make_profile(merged_into=middle)
    response = staff_client(marketer).get(f"/profiles/{oldest.pk}/")
    assert response.status_code == 302
    assert response["Location"] == f"/profiles/{anna.pk}/"


def test_an_unknown_profile_is_404(staff_client, marketer):
    assert staff_client(marketer).get("/profiles/987654/").status_code == 404


def test_the_timeline_pages_older_events_without_gaps_or_repeats(staff_client, marketer, source):
    profile = make_profile(traits={"name": "Busy"})
    # Two events share each timestamp so that the cursor must break ties by id.
    start = timezone.now() - timedelta(hours=5)
    make_events(profile, source, 30, start=start)
    make_events(profile, source, 30, start=start, event="Twin")
    client = staff_client(marketer)

    first = client.get(f"/profiles/{profile.pk}/").content.decode()
    seen = event_ids(first)
    assert len(seen) == 25
    assert "Load older events" in first
    more_url = next_page_url(first)
    pages = 1
    while more_url:
        more = client.get(more_url, headers={"HX-Request": "true"})
        assert more.status_code == 200
        body = more.content.decode()
        assert "<html" not in body
        seen += event_ids(body)
        more_url = next_page_url(body)
        pages += 1
    assert pages == 3
    expected = list(
        Event.objects.filter(profile=profile)
        .order_by("-timestamp", "-id")
        .values_list("pk", flat=True)
    )
    assert seen == expected


@pytest.mark.parametrize("cursor", ["nonsense", "12_x", "99999999999999999999999_1"])
def test_a_bad_timeline_cursor_gets_400_saying_so(staff_client, marketer, anna, cursor):
    client = staff_client(marketer)
    for page in (f"/profiles/{anna.pk}/", f"/profiles/{anna.pk}/events/"):
        response = client.get(page, {"cursor": cursor})
        assert response.status_code == 400
        assert "cursor" in response.content.decode()
