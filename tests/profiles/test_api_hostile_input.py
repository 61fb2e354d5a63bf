"""Query strings the fuzzer found to be 500s on GET /api/v1/profiles/ are 400s that name the
parameter (or, where a plain reading exists, answers)."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


@pytest.mark.parametrize("query", ["trait.x=%00", "trait.x=a%00b", "trait.%00=1", "trait.a.%00b=1"])
def test_a_trait_filter_with_nul_is_a_400_naming_it(api, query):
    response = api.get(f"/api/v1/profiles/?{query}")
    assert response.status_code == 400, response.content
    [(name, messages)] = response.json().items()
    assert name.startswith("trait.") and "NUL" in messages[0]
