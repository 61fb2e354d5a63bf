"""Consent conditions and model training go through the consent app's gate."""

import pytest

from consent.services import consent_record
from segments import conditions
from segments.compiler import base_profiles
from segments.selectors import definition_q, profile_facts
from tests.segments.conftest import NOW

pytestmark = pytest.mark.django_db


def test_consent_condition_follows_the_gate_in_sql_and_in_the_reference(profile_maker):
    by_default = profile_maker(traits={"n": 1})
    withdrawn = profile_maker(traits={"n": 2})
    consent_record(profile=withdrawn, purpose="email_marketing", granted=False, source="api")
    regranted = profile_maker(traits={"n": 3})
    consent_record(profile=regranted, purpose="email_marketing", granted=False, source="api")
    consent_record(profile=regranted, purpose="email_marketing", granted=True, source="ui")
    definition = {"consent": "email_marketing"}
    compiled = set(
        base_profiles().filter(definition_q(definition, now=NOW)).values_list("pk", flat=True)
    )
    assert compiled == {by_default.pk, regranted.pk}
    for profile in (by_default, withdrawn, regranted):
        expected = profile.pk in compiled
        assert conditions.evaluate(definition, profile_facts(profile=profile), now=NOW) is expected
        single = base_profiles().filter(
            definition_q(definition, now=NOW, profile_ids=[profile.pk]), pk=profile.pk
        )
        assert single.exists() is expected


def test_an_unknown_purpose_is_refused_with_its_pointer(api_client_with_scopes):
    client = api_client_with_scopes("segments:read", "segments:write")
    response = client.post(
        "/api/v1/segments/preview/",
        {"definition": {"any": [{"consent": "telepathy"}]}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["definition"] == [
        {"pointer": "/any/0", "message": "unknown consent purpose 'telepathy'"}
    ]
