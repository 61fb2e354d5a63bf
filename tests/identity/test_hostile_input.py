"""Input the fuzzer found to be 500s on the identity API is answered with a 400 that names the
field."""

import pytest

pytestmark = pytest.mark.django_db


def test_a_lookup_value_with_nul_is_a_400(admin_api):
    response = admin_api.get("/api/v1/identity/lookup/?kind=user_id&value=a%00b")
    assert response.status_code == 400, response.content
    assert "NUL" in response.json()["value"][0]


@pytest.mark.parametrize("value", ["%C2%B2", "1" * 5000, "99999999999999999999999", "0", "-1"])
def test_a_merge_history_profile_that_is_no_id_is_a_400(admin_api, value):
    response = admin_api.get(f"/api/v1/identity/merges/?profile={value}")
    assert response.status_code == 400, response.content
    assert list(response.json()) == ["profile"]


def test_the_merge_history_still_filters_by_a_real_id(admin_api):
    response = admin_api.get(f"/api/v1/identity/merges/?profile={2**63 - 1}")
    assert response.status_code == 200 and response.json()["results"] == []


@pytest.mark.parametrize(
    ("url", "body", "field"),
    [
        ("/api/v1/identity/merge/", {"profiles": [10**30, 1]}, "profiles"),
        ("/api/v1/identity/merge/", {"profiles": [1, 2**63]}, "profiles"),
        ("/api/v1/identity/suggestions/decide/", {"ids": [10**30], "decision": "merge"}, "ids"),
    ],
)
def test_an_id_beyond_64_bits_is_a_400(admin_api, url, body, field):
    response = admin_api.post(url, body, format="json")
    assert response.status_code == 400, response.content
    assert list(response.json()) == [field]
