"""Input the fuzzer found to be 500s on the identity API is answered with a 400 that names the
field."""

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(admin_user) -> APIClient:
    client = APIClient()
    client.force_authenticate(admin_user)
    return client


def test_a_lookup_value_with_nul_is_a_400(api):
    response = api.get("/api/v1/identity/lookup/?kind=user_id&value=a%00b")
    assert response.status_code == 400, response.content
    assert "NUL" in response.json()["value"][0]
