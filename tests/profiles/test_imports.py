"""Bulk imports of profiles and historical events: through ingestion, bad rows by line."""

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Q

from access.services import source_create
from consent.services.suppression import suppression_create
from profiles.ingestion import ingest_messages
from profiles.models import DataImport, Event, Profile, QuarantinedMessage

pytestmark = pytest.mark.django_db

EVENTS_CSV = """event,userId,timestamp,messageId,properties.price,properties.sku
Order Completed,u-1,2025-01-02T10:00:00Z,m-1,12.50,A1
Order Completed,u-1,2025-01-03T10:00:00Z,m-2,7,A2
Order Completed,u-2,yesterday-ish,m-3,3,A3
,u-3,2025-01-03T10:00:00Z,m-4,1,A4
Order Completed,u-1,2025-01-03T10:00:00Z,m-2,7,A2
Order Completed,u-4,2025-01-04T10:00:00Z,m-5
Product Viewed,gone@example.com,2025-01-05T10:00:00Z,m-6,1,A6
"""


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def run_import(tmp_path, source):
    """Write `text` to a file named `name` and import it with the command: (exit code, output)."""

    def run(kind: str, name: str, text: str) -> tuple[int, str]:
        path = tmp_path / name
        path.write_text(text)
        out = io.StringIO()
        try:
            call_command(f"import_{kind}", str(path), source=source.name, stdout=out)
        except CommandError as error:
            return 1, out.getvalue() + str(error)
        return 0, out.getvalue()

    return run


def test_import_events_keeps_good_rows_and_reports_bad_ones_by_line(run_import):
    code, output = run_import("events", "orders.csv", EVENTS_CSV)
    assert code == 0
    job = DataImport.objects.get()
    assert job.status == DataImport.Status.DONE
    assert sorted(Event.objects.values_list("message_id", flat=True)) == [
        "m-1",
        "m-2",
        "m-6",
    ]
    assert [bad["line"] for bad in job.errors] == [4, 5, 7]
    assert "timestamp" in job.errors[0]["reason"]
    assert "event" in job.errors[1]["reason"]
    assert "cells" in job.errors[2]["reason"]  # line 7 has 4 cells where the header names 6
    assert "line 4: timestamp" in output
    assert (job.accepted_count, job.duplicate_count, job.error_count) == (3, 1, 3)
    first = Event.objects.get(message_id="m-1")
    assert first.properties == {"price": 12.5, "sku": "A1"}
    assert first.timestamp.isoformat() == "2025-01-02T10:00:00+00:00"
    assert not QuarantinedMessage.objects.exists()  # reported to the importer instead


def test_importing_the_same_file_twice_stores_nothing_new(run_import):
    rows = "event,userId,timestamp\nSigned Up,u-9,2025-02-01T00:00:00Z\n"
    run_import("events", "a.csv", rows)
    run_import("events", "a.csv", rows)
    assert Event.objects.count() == 1
    second = DataImport.objects.order_by("id").last()
    assert (second.accepted_count, second.duplicate_count) == (0, 1)


# Cells whose reading matters: numbers only when they are JSON numbers ("0012" stays text),
# booleans only in JSON's spelling, blank cells left out, dotted columns nested, text kept as
# it is (tabs, backslashes, quotes, line breaks and non-ASCII included).
AWKWARD_CSV = (
    "event,userId,anonymousId,timestamp,messageId,properties.sku,properties.price,"
    "properties.flag,properties.meta.size,context.ip\n"
    'Order Completed,u-1,,2025-01-02T10:00:00Z,m-1,0012,1.5e3,true,XL,"1.2.3.4"\n'
    '"tab\there",u-2, a-2 ,2025-01-02T12:00:00+02:00,m-2,-0,-3,True,,\n'
    '"back\\slash ""quoted""",,a-3,2023-11-14T22:13:20.5,m-3,01.5,.5,false,"multi\nline",\n'
    "Émoji 🎉,u-4,,,,SKU-4,12.50,,,\n"
)
AWKWARD_AS_SENT = [
    {
        "type": "track",
        "event": "Order Completed",
        "userId": "u-1",
        "timestamp": "2025-01-02T10:00:00Z",
        "messageId": "m-1",
        "properties": {"sku": "0012", "price": 1500.0, "flag": True, "meta": {"size": "XL"}},
        "context": {"ip": "1.2.3.4"},
    },
    {
        "type": "track",
        "event": "tab\there",
        "userId": "u-2",
        "anonymousId": "a-2",
        "timestamp": "2025-01-02T12:00:00+02:00",
        "messageId": "m-2",
        "properties": {"sku": 0, "price": -3, "flag": "True"},
    },
    {
        "type": "track",
        "event": 'back\\slash "quoted"',
        "anonymousId": "a-3",
        "timestamp": "2023-11-14T22:13:20.5",
        "messageId": "m-3",
        "properties": {
            "sku": "01.5",
            "price": ".5",
            "flag": False,
            "meta": {"size": "multi\nline"},
        },
    },
    {
        "type": "track",
        "event": "Émoji 🎉",
        "userId": "u-4",
        "properties": {"sku": "SKU-4", "price": 12.5},
    },
]


def test_an_imported_csv_stores_the_rows_the_api_stores_for_the_same_events(run_import):
    code, output = run_import("events", "awkward.csv", AWKWARD_CSV)
    assert code == 0, output
    job = DataImport.objects.get()
    assert (job.accepted_count, job.error_count) == (4, 0), job.errors
    by_api = source_create(name="API").record
    ingest_messages(source=by_api, messages=AWKWARD_AS_SENT)
    columns = [
        f.column
        for f in Event._meta.concrete_fields
        if f.column not in ("id", "source_id", "received_at", "timestamp")
    ]
    imported = Event.objects.exclude(source=by_api).order_by("event")
    sent = Event.objects.filter(source=by_api).order_by("event")
    assert list(imported.values_list(*columns)) == list(sent.values_list(*columns))
    # Without a timestamp the event time is when it was received: the others compared.
    timed = ~Q(event="Émoji 🎉")
    assert list(imported.filter(timed).values_list("timestamp")) == list(
        sent.filter(timed).values_list("timestamp")
    )


def test_import_drops_the_rows_of_a_suppressed_person(run_import):
    suppression_create(identifiers={"email": "gone@example.com"}, profile_ids=[])
    text = "userId,email,first_name\nu-1,ann@example.com,Ann\nu-2,gone@example.com,Gone\n"
    code, _ = run_import("profiles", "people.csv", text)
    assert code == 0
    job = DataImport.objects.get()
    assert job.dropped_count == 1
    assert job.errors == [{"line": 3, "reason": "suppressed"}]
    assert list(Event.objects.values_list("user_id", flat=True)) == ["u-1"]


def test_import_profiles_sets_traits_and_identifiers_through_the_pipeline(
    run_import, django_capture_on_commit_callbacks
):
    text = "\n".join(
        json.dumps(row)
        for row in [
            {"userId": "c-1", "email": "Ann@Example.com", "address": {"country": "DE"}},
            {"userId": "c-2", "traits": {"email": "bo@example.com", "plan": "pro"}},
            ["not", "an", "object"],
        ]
    )
    with django_capture_on_commit_callbacks(execute=True):
        code, output = run_import("profiles", "people.jsonl", text)
    assert code == 0, output
    job = DataImport.objects.get()
    assert job.errors == [{"line": 3, "reason": "Must be a JSON object."}]
    ann = Profile.objects.get(traits__email="Ann@Example.com")
    assert ann.traits["address"] == {"country": "DE"}
    assert Profile.objects.filter(traits__plan="pro").exists()
    assert Profile.objects.filter(merged_into__isnull=True).count() == 2


def test_a_csv_with_unknown_columns_is_refused_whole(run_import):
    code, output = run_import("events", "bad.csv", "event,color\nX,red\n")
    assert code == 1
    assert "Unknown column(s): color" in output
    assert not DataImport.objects.exists()


def test_the_data_page_upload_queues_an_import_and_shows_its_report(
    staff_client, marketer, source, django_capture_on_commit_callbacks
):
    client = staff_client(marketer)
    upload = SimpleUploadedFile("orders.csv", EVENTS_CSV.encode(), content_type="text/csv")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            "/data/imports/new/", {"source": source.pk, "kind": "events", "file": upload}
        )
    job = DataImport.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/data/imports/{job.pk}/"
    assert job.requested_by == marketer and job.status == DataImport.Status.DONE
    page = client.get(f"/data/imports/{job.pk}/progress/").content.decode()
    assert "hx-trigger" not in page  # finished: no more polling
    assert "yesterday-ish" not in page and "not a date-time" in page


def test_an_upload_that_is_not_csv_or_jsonl_is_a_form_error(staff_client, marketer, source):
    upload = SimpleUploadedFile("orders.xlsx", b"PK..", content_type="application/octet-stream")
    response = staff_client(marketer).post(
        "/data/imports/new/", {"source": source.pk, "kind": "events", "file": upload}
    )
    assert response.status_code == 400
    assert "must be .csv or .jsonl" in response.content.decode()


@pytest.mark.parametrize("role", ["no_role_user", "compliance"])
def test_imports_refuse_users_without_a_data_role(staff_client, request, source, role):
    client = staff_client(request.getfixturevalue(role))
    assert client.get("/data/imports/").status_code == 403
    upload = SimpleUploadedFile("a.csv", b"event,userId\nX,u\n")
    response = client.post(
        "/data/imports/new/", {"source": source.pk, "kind": "events", "file": upload}
    )
    assert response.status_code == 403
    assert not DataImport.objects.exists()


def test_a_job_worked_in_slices_resumes_after_its_rows_and_honours_the_lease(
    source, monkeypatch, tmp_path
):
    from django.core.files import File

    from profiles.services import data_import_create, data_import_run
    from profiles.services import imports as import_service

    monkeypatch.setattr(import_service, "BATCH", 2)
    path = tmp_path / "five.csv"
    path.write_text("event,userId\n" + "".join(f"E{n},u-{n}\n" for n in range(5)))
    with path.open("rb") as handle:
        job = data_import_create(
            source=source, kind="events", upload=File(handle), file_name="five.csv"
        )
    job = data_import_run(job=job, slice_seconds=1e-9)
    assert (job.status, job.processed_rows, job.lease_until) == ("running", 2, None)
    DataImport.objects.filter(pk=job.pk).update(lease_until="2999-01-01T00:00:00Z")
    held = data_import_run(job=job)  # another worker holds it: nothing happens
    assert held.processed_rows == 2
    DataImport.objects.filter(pk=job.pk).update(lease_until=None)
    job = data_import_run(job=job)
    assert (job.status, job.processed_rows, job.accepted_count) == ("done", 5, 5)
    assert Event.objects.count() == 5


def test_a_csv_cell_beyond_the_csv_size_limit_is_a_form_error(staff_client, marketer, source):
    upload = SimpleUploadedFile("huge.csv", ("x" * 200_000 + ",y\n1,2\n").encode())
    response = staff_client(marketer).post(
        "/data/imports/new/", {"source": source.pk, "kind": "events", "file": upload}
    )
    assert response.status_code == 400
    assert "field larger than field limit" in response.content.decode()
    assert not DataImport.objects.exists()


def test_a_finished_import_keeps_no_copy_of_its_file(run_import, tmp_path):
    """The upload holds people's data where erasure and retention do not reach: it goes once
    its rows are stored; its name stays for the list."""
    run_import("events", "orders.csv", EVENTS_CSV)
    job = DataImport.objects.get()
    assert job.status == DataImport.Status.DONE
    assert not job.file and job.file_name == "orders.csv"
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]
