"""The catalog: REST API, who may use it, bulk imports, and items learned from events."""

import io
import json
from datetime import timedelta

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from rest_framework.test import APIClient

from cdp import pipeline
from recommendations.models import Interaction, Item, ItemImport
from recommendations.services import item_create, item_import_create, item_import_run
from tests.identity.factories import event_make

pytestmark = pytest.mark.django_db

MUG = {
    "external_id": "SKU-1",
    "title": "Blue mug",
    "category": "Home > Kitchen > Mugs",
    "brand": "Acme",
    "price": "12.50",
    "currency": "eur",
    "url": "https://shop.example/mug",
    "attributes": {"colour": "blue", "sizes": ["S", "L"]},
}


def test_an_item_is_created_read_patched_and_deleted_through_the_api(admin_api):
    created = admin_api.post("/api/v1/items/", MUG, format="json")
    assert created.status_code == 201, created.json()
    body = created.json()
    assert body["price"] == "12.50" and body["currency"] == "EUR"
    assert sorted(body["catalog_fields"]) == sorted(set(MUG) - {"external_id"})

    assert admin_api.get("/api/v1/items/SKU-1/").json()["title"] == "Blue mug"
    patched = admin_api.patch(
        "/api/v1/items/SKU-1/", {"availability": "out_of_stock"}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["availability"] == "out_of_stock"
    assert admin_api.delete("/api/v1/items/SKU-1/").status_code == 204
    assert admin_api.get("/api/v1/items/SKU-1/").status_code == 404


def test_a_bad_item_gets_a_400_naming_each_field(admin_api):
    response = admin_api.post(
        "/api/v1/items/",
        {
            "title": "x" * 501,
            "price": "-3",
            "url": "javascript:alert(1)",
            "attributes": {"colour": {"nested": True}},
            "currency": "EURO",
            "availability": "maybe",
            "colour": "red",
        },
        format="json",
    )
    assert response.status_code == 400
    errors = response.json()
    assert set(errors) == {
        "external_id",
        "title",
        "price",
        "url",
        "attributes",
        "currency",
        "availability",
        "colour",
    }


def test_creating_an_id_the_catalog_has_is_a_409(admin_api):
    item_create(fields=MUG)
    assert admin_api.post("/api/v1/items/", MUG, format="json").status_code == 409


def test_the_list_filters_by_category_path_brand_price_and_availability(admin_api):
    item_create(fields=MUG)
    item_create(fields={**MUG, "external_id": "SKU-2", "brand": "Other", "price": "40"})
    item_create(fields={**MUG, "external_id": "SKU-3", "category": "Home > Garden"})
    item_create(fields={**MUG, "external_id": "SKU-4", "availability": "out_of_stock"})

    def ids(query: str) -> set[str]:
        response = admin_api.get(f"/api/v1/items/?{query}")
        assert response.status_code == 200, response.json()
        return {item["external_id"] for item in response.json()["results"]}

    assert ids("category=Home > Kitchen") == {"SKU-1", "SKU-2", "SKU-4"}
    assert ids("category=Home") == {"SKU-1", "SKU-2", "SKU-3", "SKU-4"}
    assert ids("category=Hom") == set()
    assert ids("brand=Other") == {"SKU-2"}
    assert ids("price_min=20") == {"SKU-2"}
    assert ids("price_max=20&availability=in_stock") == {"SKU-1", "SKU-3"}
    assert admin_api.get("/api/v1/items/?colour=red").status_code == 400
    assert admin_api.get("/api/v1/items/?price_min=cheap").status_code == 400
    # An empty filter is no filter; an amount is written as the schema's pattern says.
    assert ids("price_min=&brand=&availability=") == {"SKU-1", "SKU-2", "SKU-3", "SKU-4"}
    assert ids("price_max=20.5") == {"SKU-1", "SKU-3", "SKU-4"}
    for amount in ("-", "-1", " 20", "1e2", "20.001", "1234567890123"):
        response = admin_api.get("/api/v1/items/", {"price_max": amount})
        assert response.status_code == 400 and "price_max" in response.json(), amount


@pytest.mark.parametrize(
    ("role", "read", "write"),
    [("marketer", 200, 201), ("admin_user", 200, 201), ("compliance", 200, 403)],
)
def test_marketers_and_admins_write_compliance_only_reads(request, role, read, write):
    api = APIClient()
    api.force_authenticate(request.getfixturevalue(role))
    assert api.get("/api/v1/items/").status_code == read
    assert api.post("/api/v1/items/", MUG, format="json").status_code == write


def test_a_user_without_a_role_and_an_anonymous_caller_are_refused(no_role_user):
    api = APIClient()
    assert api.get("/api/v1/items/").status_code in (401, 403)
    api.force_authenticate(no_role_user)
    assert api.get("/api/v1/items/").status_code == 403


def test_api_keys_need_the_recommendations_scope_for_each_access(api_client_with_scopes):
    reader = api_client_with_scopes("recommendations:read")
    assert reader.get("/api/v1/items/").status_code == 200
    assert reader.post("/api/v1/items/", MUG, format="json").status_code == 403
    writer = api_client_with_scopes("recommendations:write")
    assert writer.post("/api/v1/items/", MUG, format="json").status_code == 201
    other = api_client_with_scopes("profiles:read", "profiles:write")
    assert other.get("/api/v1/items/").status_code == 403
    assert other.delete("/api/v1/items/SKU-1/").status_code == 403


CSV = (
    "product_id,name,category,price,availability,attr.colour\n"
    "A1,Red lamp,Home > Lights,19.99,in_stock,red\n"
    "A2,Broken,Home,not-a-price,in_stock,\n"
    ",No id,Home,1,in_stock,\n"
    '"A3","Multi\nline title",Home,5,out_of_stock,green\n'
    "A4,Too,many,cells,here,x,y\n"
    "A1,Red lamp v2,Home > Lights,21.00,,\n"
)


def test_the_import_command_keeps_good_rows_and_reports_bad_ones_by_line(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path / "media"
    path = tmp_path / "items.csv"
    path.write_text(CSV)
    out = io.StringIO()

    call_command("items_import", str(path), stdout=out)

    text = out.getvalue()
    assert "line 3: price: Must be a number." in text
    assert "line 4: external_id:" in text
    assert "line 7: line: 7 cells where the header names 6." in text
    assert "2 created, 1 updated, 3 bad rows skipped" in text
    lamp = Item.objects.get(external_id="A1")
    assert (lamp.title, str(lamp.price)) == ("Red lamp v2", "21.00")
    assert lamp.attributes == {"colour": "red"}  # the empty cell left it as it was
    assert Item.objects.get(external_id="A3").title == "Multi\nline title"
    # No copy of the upload outlives the import.
    assert not [p for p in (tmp_path / "media").rglob("*") if p.is_file()]


def test_a_jsonl_import_runs_on_a_worker_with_progress_through_the_api(
    admin_api, settings, tmp_path, django_capture_on_commit_callbacks
):
    settings.MEDIA_ROOT = tmp_path
    lines = [
        json.dumps({"sku": "J1", "title": "One", "attributes": {"size": 3}}),
        "{not json",
        json.dumps(["a list"]),
        "",
        json.dumps({"sku": "J2", "price": 4}),
    ]
    upload = ContentFile("\n".join(lines).encode(), name="feed.jsonl")

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post("/api/v1/item-imports/", {"file": upload}, format="multipart")

    assert response.status_code == 202, response.json()
    job = admin_api.get(f"/api/v1/item-imports/{response.json()['id']}/").json()
    assert job["status"] == "done" and job["progress"] == 100
    assert (job["total_rows"], job["created_count"], job["error_count"]) == (4, 2, 2)
    assert [bad["line"] for bad in job["errors"]] == [2, 3]
    assert set(Item.objects.values_list("external_id", flat=True)) == {"J1", "J2"}


def test_an_import_with_unknown_columns_fails_as_a_whole(tmp_path, settings):
    settings.MEDIA_ROOT = tmp_path
    job = item_import_create(upload=ContentFile(b"sku,colour\nA,red\n"), file_name="x.csv")
    job = item_import_run(job=job)
    assert job.status == ItemImport.Status.FAILED
    assert "Unknown column(s): colour" in job.message
    assert not Item.objects.exists()


def test_an_import_of_another_file_type_is_refused(admin_api):
    upload = ContentFile(b"<xml/>", name="feed.xml")
    response = admin_api.post("/api/v1/item-imports/", {"file": upload}, format="multipart")
    assert response.status_code == 400
    assert "csv" in response.json()["file"][0]


def process(*events) -> None:
    pipeline.events_process(event_ids=[e.pk for e in events])


def test_events_create_items_and_later_events_update_them(source):
    viewed = event_make(
        source,
        event="Product Viewed",
        anonymous_id="a1",
        properties={"product_id": "P9", "name": "Tent", "price": 99, "category": "Outdoor"},
    )
    process(viewed)
    tent = Item.objects.get(external_id="P9")
    assert (tent.title, str(tent.price), tent.category) == ("Tent", "99.00", "Outdoor")
    order = event_make(
        source,
        event="Order Completed",
        anonymous_id="a1",
        at=timedelta(hours=1),
        properties={
            "products": [
                {"product_id": "P9", "name": "Tent 2p", "price": 89, "quantity": 2},
                {"sku": "S-7", "name": "Peg"},
                "not an object",
                {"name": "no id"},
            ]
        },
    )
    process(order)
    tent.refresh_from_db()
    assert (tent.title, str(tent.price)) == ("Tent 2p", "89.00")
    assert Item.objects.filter(external_id="S-7", title="Peg").exists()
    kinds = set(Interaction.objects.values_list("item__external_id", "kind", "quantity"))
    assert kinds == {("P9", "view", 1.0), ("P9", "purchase", 2.0), ("S-7", "purchase", 1.0)}


def test_an_explicit_catalog_write_wins_over_what_events_say(source):
    item_create(fields={"external_id": "P1", "title": "Official name", "price": "10"})
    event = event_make(
        source,
        event="Product Added",
        anonymous_id="a2",
        properties={"product_id": "P1", "name": "page title", "price": 1, "brand": "B"},
    )
    process(event)
    item = Item.objects.get(external_id="P1")
    assert (item.title, str(item.price), item.brand) == ("Official name", "10.00", "B")


def test_an_older_event_processed_late_does_not_overwrite_a_newer_one(source):
    newer = event_make(
        source,
        event="Product Viewed",
        anonymous_id="a3",
        at=timedelta(days=2),
        properties={"product_id": "P2", "name": "New name"},
    )
    process(newer)
    older = event_make(
        source,
        event="Product Viewed",
        anonymous_id="a3",
        properties={"product_id": "P2", "name": "Old name"},
    )
    process(older)
    assert Item.objects.get(external_id="P2").title == "New name"
    assert Interaction.objects.filter(item__external_id="P2").count() == 2


def test_processing_a_chunk_again_records_nothing_twice(source):
    event = event_make(
        source, event="Product Viewed", anonymous_id="a4", properties={"product_id": "P3"}
    )
    process(event)
    from recommendations.services import interactions_record

    event.refresh_from_db()
    interactions_record(resolved=[(event.profile, [event])])
    assert Interaction.objects.count() == 1
