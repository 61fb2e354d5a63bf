"""The recommendations pages: who may see and change what, bad input as a form error or a
404, the catalog search, an upload run inline with its bad rows, promotion refused for a run
below popularity, the profile page's blocks (the browser tests in tests/e2e drive them)."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from recommendations.models import Item, ItemImport, ModelRun
from tests.recommendations.conftest import train

pytestmark = pytest.mark.django_db

PAGES = ["/recommendations/", "/recommendations/models/", "/recommendations/models/progress/"]


@pytest.mark.parametrize("who", ["marketer", "compliance", "admin_user"])
def test_every_role_reads_the_pages(request, staff_client, served, who):
    client = staff_client(request.getfixturevalue(who))
    item = Item.objects.get(external_id="a0")
    person = next(iter(served.people.values()))
    for url in [
        *PAGES,
        f"/recommendations/items/{item.pk}/",
        f"/recommendations/profiles/{person.pk}/",
    ]:
        assert client.get(url).status_code == 200, url


def test_a_user_without_a_role_is_refused_and_a_visitor_sent_to_log_in(no_role_user, shop):
    visitor, nobody = Client(), Client()
    nobody.force_login(no_role_user)
    for url in [*PAGES, "/recommendations/imports/new/"]:
        assert visitor.get(url).status_code == 302
        assert nobody.get(url).status_code == 403


def test_compliance_reads_but_does_not_upload_train_or_promote(staff_client, compliance, served):
    client = staff_client(compliance)
    run = ModelRun.objects.get(is_serving=True)
    assert client.get("/recommendations/imports/new/").status_code == 403
    assert client.post("/recommendations/models/train/", {"kind": "ease"}).status_code == 403
    assert client.post(f"/recommendations/models/{run.pk}/serve/").status_code == 403
    assert ModelRun.objects.count() == 1


def test_the_catalog_searches_by_title_category_and_availability(staff_client, marketer, shop):
    client = staff_client(marketer)
    Item.objects.filter(external_id="a3").update(availability="out_of_stock")
    page = client.get("/recommendations/", {"q": "Spade"}).context["page"]
    assert page.paginator.count == 12
    page = client.get("/recommendations/", {"category": "Kitchen"}).context["page"]
    assert page.paginator.count == 12 and all(i.category == "Kitchen > Pans" for i in page)
    page = client.get("/recommendations/", {"availability": "out_of_stock"}).context["page"]
    assert [item.external_id for item in page] == ["a3"]
    assert client.get("/recommendations/", {"availability": "nonsense"}).status_code == 200


def test_an_upload_is_imported_keeping_good_rows_and_reporting_bad_ones_by_line(
    staff_client, marketer, django_capture_on_commit_callbacks, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    body = b'{"external_id": "x1", "title": "Cup"}\n{"external_id": "x2", "price": "-1"}\nnope\n'
    with django_capture_on_commit_callbacks(execute=True):
        response = staff_client(marketer).post(
            "/recommendations/imports/new/",
            {"file": SimpleUploadedFile("items.jsonl", body)},
        )
    job = ItemImport.objects.get()
    assert response.status_code == 302 and response.url == f"/recommendations/imports/{job.pk}/"
    assert job.status == "done" and job.created_count == 1 and job.error_count == 2
    page = staff_client(marketer).get(response.url).content.decode()
    assert 'data-import-status="done"' in page and "hx-trigger" not in page
    assert [e["line"] for e in job.errors] == [2, 3]
    assert Item.objects.filter(external_id="x1").exists()


def test_an_upload_of_the_wrong_kind_is_a_form_error(staff_client, marketer):
    response = staff_client(marketer).post(
        "/recommendations/imports/new/", {"file": SimpleUploadedFile("items.xlsx", b"x")}
    )
    assert response.status_code == 400
    assert "must be .csv or .jsonl" in response.content.decode()
    assert not ItemImport.objects.exists()


def test_a_running_import_polls_its_progress(staff_client, marketer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    job = ItemImport.objects.create(format="csv", status="running", total_rows=10)
    job.processed_rows = 4
    job.save()
    page = staff_client(marketer).get(f"/recommendations/imports/{job.pk}/progress/")
    html = page.content.decode()
    assert 'aria-valuenow="40"' in html and 'hx-trigger="every 1s"' in html


def test_a_marketer_trains_promotes_and_rolls_back_from_the_models_page(
    staff_client, marketer, shop, django_capture_on_commit_callbacks
):
    client = staff_client(marketer)
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/recommendations/models/train/", {"kind": "ease"}).status_code == 302
    champion = ModelRun.objects.get(is_serving=True)
    challenger = train("ease", l2=260.0)
    assert not challenger.is_serving
    client.post(f"/recommendations/models/{challenger.pk}/serve/")
    assert ModelRun.objects.get(is_serving=True).pk == challenger.pk
    client.post(f"/recommendations/models/{champion.pk}/serve/")
    assert ModelRun.objects.get(is_serving=True).pk == champion.pk
    assert client.post("/recommendations/models/train/", {"kind": "nope"}).status_code == 400


def test_a_run_below_popularity_cannot_be_promoted_by_hand(staff_client, marketer, shop):
    champion = train("ease")
    worse = train("trending")
    response = staff_client(marketer).post(
        f"/recommendations/models/{worse.pk}/serve/", follow=True
    )
    assert "below recent popularity" in response.content.decode()
    assert ModelRun.objects.get(is_serving=True).pk == champion.pk


def test_unknown_items_profiles_imports_and_runs_are_404(staff_client, marketer, db):
    client = staff_client(marketer)
    for url in [
        "/recommendations/items/999999/",
        "/recommendations/profiles/999999/",
        "/recommendations/imports/999999/",
    ]:
        assert client.get(url).status_code == 404
    assert client.post("/recommendations/models/999999/serve/").status_code == 404


def test_the_profile_block_is_not_personal_without_consent(staff_client, marketer, served):
    from consent.services import consent_record

    person = next(iter(served.people.values()))
    consent_record(profile=person, purpose="personalization", granted=False, source="api")
    html = staff_client(marketer).get(f"/recommendations/profiles/{person.pk}/").content.decode()
    assert "not personal" in html and "you bought this before" not in html


def test_an_upload_without_a_file_is_a_form_error(staff_client, marketer, shop):
    response = staff_client(marketer).post("/recommendations/imports/new/", {})
    assert response.status_code == 400
