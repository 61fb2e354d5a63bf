"""The Data pages: sources and write keys, tracking plans, quarantine."""

import re
from datetime import timedelta

import pytest
from django.utils import timezone

from access.models import Source
from access.selectors import source_for_write_key
from access.services import source_create
from profiles.ingestion import tracking_plan_save
from profiles.models import Event, QuarantinedMessage, TrackingPlan
from tests.conftest import WRITE_KEY

pytestmark = pytest.mark.django_db

GET_PAGES = ["/data/", "/data/sources/{id}/", "/data/quarantine/", "/data/currencies/"]
ADMIN_POSTS = [
    ("/data/sources/new/", {"name": "CRM"}),
    ("/data/sources/{id}/rotate/", {}),
    ("/data/sources/{id}/enabled/", {"enabled": "0"}),
    ("/data/sources/{id}/plan/", {"mode": "flag", "event_schemas": "{}"}),
    ("/data/currencies/set/", {"currency": "EUR", "rate": "1.1"}),
    ("/data/currencies/EUR/delete/", {}),
]


def _quarantine(source, n: int, **fields) -> QuarantinedMessage:
    return QuarantinedMessage.objects.create(
        source=source,
        received_at=timezone.now() - timedelta(minutes=n),
        message_id=f"q-{n}",
        event=fields.pop("event", "Order Completed"),
        reason=fields.pop("reason", "Unplanned event"),
        errors=fields.pop("errors", [{"path": "properties.revenue", "message": "not a number"}]),
        message={"type": "track", "event": "Order Completed", "properties": {"revenue": "x"}},
    )


@pytest.mark.parametrize("url", GET_PAGES)
def test_data_pages_send_anonymous_visitors_to_the_login(client, source, url):
    response = client.get(url.format(id=source.pk))
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(("url", "data"), ADMIN_POSTS)
def test_data_actions_send_anonymous_visitors_to_the_login(client, source, url, data):
    response = client.post(url.format(id=source.pk), data)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize("url", GET_PAGES)
@pytest.mark.parametrize("role", ["no_role_user", "compliance"])
def test_data_pages_refuse_users_without_a_data_role(staff_client, request, source, url, role):
    client = staff_client(request.getfixturevalue(role))
    assert client.get(url.format(id=source.pk)).status_code == 403


@pytest.mark.parametrize("url", GET_PAGES)
@pytest.mark.parametrize("role", ["marketer", "admin_user"])
def test_marketers_and_admins_see_the_data_pages(staff_client, request, source, url, role):
    client = staff_client(request.getfixturevalue(role))
    assert client.get(url.format(id=source.pk)).status_code == 200


@pytest.mark.parametrize(("url", "data"), ADMIN_POSTS)
@pytest.mark.parametrize("role", ["marketer", "compliance", "no_role_user"])
def test_only_admins_change_sources_and_plans(staff_client, request, source, url, data, role):
    client = staff_client(request.getfixturevalue(role))
    assert client.post(url.format(id=source.pk), data).status_code == 403
    assert source_for_write_key(write_key=WRITE_KEY) == source
    assert not Source.objects.filter(name="CRM").exists()
    assert not TrackingPlan.objects.exists()


def test_the_source_list_shows_prefix_counts_and_last_event(staff_client, marketer, source):
    now = timezone.now()
    for n in range(3):
        Event.objects.create(
            source=source,
            message_id=f"m{n}",
            type="track",
            event="Signed Up",
            timestamp=now,
            received_at=now - timedelta(minutes=n),
            payload={},
        )
    _quarantine(source, 1)
    source_create(name="iOS app")
    html = staff_client(marketer).get("/data/").content.decode()
    row = re.search(r"<tr>\s*<td><a[^>]*>Website</a>.*?</tr>", html, re.S).group(0)
    assert f"<code>{source.write_key_prefix}…</code>" in row
    assert '<td class="num">3</td>' in row
    assert "now" in row  # latest event, received a moment ago
    assert "iOS app" in html
    assert WRITE_KEY not in html
    assert "New source" not in html  # marketers do not get the form


def test_an_admin_creates_a_source_and_sees_its_write_key_once(staff_client, admin_user):
    client = staff_client(admin_user)
    response = client.post("/data/sources/new/", {"name": "CRM"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    key = re.search(
        r'<code class="secret" id="write-key">([^<]+)</code>', response.content.decode()
    )
    source = Source.objects.get(name="CRM")
    assert source_for_write_key(write_key=key.group(1)) == source
    assert key.group(1) not in client.get("/data/").content.decode()
    assert key.group(1) not in client.get(f"/data/sources/{source.pk}/").content.decode()


@pytest.mark.parametrize(
    ("name", "error"), [("", "This field is required."), ("website", "already a source")]
)
def test_a_bad_source_name_is_a_form_error_and_saves_nothing(
    staff_client, admin_user, source, name, error
):
    response = staff_client(admin_user).post("/data/sources/new/", {"name": name})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert Source.objects.count() == 1


def test_rotating_a_write_key_retires_the_old_one(staff_client, admin_user, source):
    response = staff_client(admin_user).post(f"/data/sources/{source.pk}/rotate/")
    assert response.status_code == 200
    new_key = re.search(r'id="write-key">([^<]+)<', response.content.decode()).group(1)
    assert source_for_write_key(write_key=WRITE_KEY) is None
    assert source_for_write_key(write_key=new_key) == source


def test_disabling_a_source_closes_its_write_key_and_enabling_reopens_it(
    staff_client, admin_user, source
):
    client = staff_client(admin_user)
    client.post(f"/data/sources/{source.pk}/enabled/", {"enabled": "0"})
    assert source_for_write_key(write_key=WRITE_KEY) is None
    assert "disabled" in client.get(f"/data/sources/{source.pk}/").content.decode()
    client.post(f"/data/sources/{source.pk}/enabled/", {"enabled": "1"})
    assert source_for_write_key(write_key=WRITE_KEY) == source


def test_an_admin_saves_a_tracking_plan(staff_client, admin_user, source):
    schemas = '{"Order Completed": {"type": "object", "required": ["revenue"]}}'
    client = staff_client(admin_user)
    response = client.post(
        f"/data/sources/{source.pk}/plan/", {"mode": "quarantine", "event_schemas": schemas}
    )
    assert response.status_code == 302
    plan = TrackingPlan.objects.get(source=source)
    assert plan.mode == "quarantine"
    assert plan.event_schemas == {"Order Completed": {"type": "object", "required": ["revenue"]}}
    page = client.get(f"/data/sources/{source.pk}/").content.decode()
    assert "&quot;Order Completed&quot;" in page
    assert '<option value="quarantine" selected>' in page


@pytest.mark.parametrize(
    ("mode", "schemas", "error"),
    [
        ("flag", '{"Order Completed": {', "Not valid JSON"),
        ("flag", '["Order Completed"]', "must be a JSON object mapping event names"),
        ("flag", '{"Order Completed": {"type": "nonsense"}}', "not a valid JSON Schema"),
        ("flag", '{"Order Completed": {"required": "revenue"}}', "not a valid JSON Schema"),
        ("flag", '{"Order Completed": 3}', "must be a JSON object"),
        ("flag", '{" ": {}}', "not a valid event name"),
        ("delete-everything", "{}", "Select a valid choice"),
    ],
)
def test_a_bad_tracking_plan_is_a_form_error_and_saves_nothing(
    staff_client, admin_user, source, mode, schemas, error
):
    response = staff_client(admin_user).post(
        f"/data/sources/{source.pk}/plan/", {"mode": mode, "event_schemas": schemas}
    )
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not TrackingPlan.objects.exists()


def test_marketers_see_that_a_source_has_no_plan(staff_client, marketer, source):
    html = staff_client(marketer).get(f"/data/sources/{source.pk}/").content.decode()
    assert "No tracking plan" in html
    assert "<textarea" not in html


def test_marketers_see_the_plan_read_only(staff_client, marketer, source):
    tracking_plan_save(source=source, mode="flag", event_schemas={"Signed Up": {"type": "object"}})
    html = staff_client(marketer).get(f"/data/sources/{source.pk}/").content.decode()
    assert "Only admins change tracking plans." in html
    assert re.search(r"<textarea[^>]*disabled", html)
    assert "&quot;Signed Up&quot;" in html
    assert "Save tracking plan" not in html
    assert "Rotate write key" not in html


def test_the_quarantine_lists_reasons_and_errors_newest_first(staff_client, marketer, source):
    _quarantine(source, 5, reason="Unplanned event", event="Old One")
    _quarantine(source, 1, reason="Violates the tracking plan", event="New One")
    html = staff_client(marketer).get("/data/quarantine/").content.decode()
    assert html.index("New One") < html.index("Old One")
    assert "Violates the tracking plan" in html
    assert "<code>properties.revenue</code>: not a number" in html
    newest = QuarantinedMessage.objects.get(event="New One")
    detail = staff_client(marketer).get(f"/data/quarantine/{newest.pk}/").content.decode()
    assert "&quot;revenue&quot;: &quot;x&quot;" in detail


def test_the_quarantine_filters_by_source_and_pages(staff_client, marketer, source):
    other = source_create(name="CRM").record
    for n in range(55):
        _quarantine(source, n, event=f"Website event {n}")
    _quarantine(other, 0, event="CRM event")
    client = staff_client(marketer)
    first = client.get(f"/data/quarantine/?source={source.pk}").content.decode()
    assert "CRM event" not in first
    assert "Page 1 of 2" in first
    assert "Website event 0<" in first
    second = client.get(f"/data/quarantine/?source={source.pk}&page=2").content.decode()
    assert "Website event 54<" in second
    assert "Website event 0<" not in second
    everything = client.get("/data/quarantine/").content.decode()
    assert "CRM event" in everything


def test_an_unknown_source_filter_is_a_form_error(staff_client, marketer, source):
    response = staff_client(marketer).get("/data/quarantine/?source=999999")
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_the_data_entry_shows_in_the_menu_for_marketers_and_admins_only(
    staff_client, marketer, admin_user, compliance
):
    assert 'href="/data/"' in staff_client(marketer).get("/").content.decode()
    assert 'href="/data/"' in staff_client(admin_user).get("/").content.decode()
    assert 'href="/data/"' not in staff_client(compliance).get("/").content.decode()


@pytest.mark.parametrize(
    ("url", "queries"),
    # session, user, roles; then the page's own: sources with counts | count, page, the source
    # filter's choices | the source with counts, its recent quarantine, its latest events.
    [("/data/", 4), ("/data/quarantine/", 6), ("/data/sources/{id}/", 6)],
)
def test_data_pages_run_a_fixed_number_of_queries(
    staff_client, admin_user, source, django_assert_num_queries, url, queries
):
    for n in range(6):
        other = source_create(name=f"Source {n}").record
        _quarantine(other, n)
        _quarantine(source, n + 10)
    client = staff_client(admin_user)
    with django_assert_num_queries(queries):
        assert client.get(url.format(id=source.pk)).status_code == 200


def test_source_changes_are_audited_without_the_write_key(staff_client, admin_user, source):
    from access.models import AuditLog

    client = staff_client(admin_user)
    created = client.post("/data/sources/new/", {"name": "CRM"}).content.decode()
    rotated = client.post(f"/data/sources/{source.pk}/rotate/").content.decode()
    client.post(f"/data/sources/{source.pk}/enabled/", {"enabled": "0"})
    keys = [re.search(r'id="write-key">([^<]+)<', html).group(1) for html in (created, rotated)]
    rows = list(AuditLog.objects.filter(actor=admin_user).order_by("id"))
    assert [row.action for row in rows] == ["source.create", "source.rotate_key", "source.disable"]
    for row in rows:
        assert not any(key in str(row.details) for key in keys)
