"""Identifier normalization (identity.normalize): examples and properties over its input space."""

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from identity.normalize import (
    email_normalize,
    event_identifiers,
    id_normalize,
    phone_normalize,
)

any_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Ann@Example.COM ", "ann@example.com"),
        ("ann@example.com", "ann@example.com"),
        ("not-an-email", ""),
        ("@example.com", ""),
        ("ann@", ""),
        ("a b@example.com", ""),
        (None, ""),
        (42, ""),
    ],
)
def test_emails_are_stripped_and_lower_cased_and_non_emails_refused(raw, expected):
    assert email_normalize(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("(415) 555-0100", "+14155550100"),
        ("+1 415-555-0100", "+14155550100"),
        ("415.555.0100", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+47 22 12 34 56", "+4722123456"),
        ("555", ""),
        ("call me", ""),
        ("", ""),
        (True, ""),
        (None, ""),
    ],
)
def test_phones_become_e164_in_the_default_region_and_invalid_ones_are_refused(raw, expected):
    assert phone_normalize(raw, region="US") == expected


@given(any_json)
def test_email_normalization_is_idempotent_and_never_fails(value):
    once = email_normalize(value)
    assert email_normalize(once) == once
    assert once == once.strip().lower()
    assert once == "" or "@" in once


@given(st.emails())
def test_every_valid_email_is_kept_whatever_its_case_and_padding(email):
    padded = f"  {email.upper()}\t"
    assert email_normalize(padded) == email.lower()


@given(any_json)
def test_phone_normalization_is_idempotent_and_yields_e164_or_nothing(value):
    once = phone_normalize(value, region="US")
    assert phone_normalize(once, region="US") == once
    assert once == "" or (once.startswith("+") and once[1:].isdigit())


@given(st.sampled_from(["US", "GB", "DE", "NO", "FR", "IN", "BR", "JP"]))
def test_a_valid_number_written_nationally_or_internationally_is_one_identity(region):
    number = phonenumbers.example_number(region)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    assert phone_normalize(national, region=region) == e164
    assert phone_normalize(international, region="US") == e164


@given(any_json)
def test_ids_are_text_without_padding(value):
    once = id_normalize(value)
    assert id_normalize(once) == once
    assert once == once.strip()


def test_numeric_ids_become_text():
    assert id_normalize(123) == "123"
    assert id_normalize(123.0) == "123"
    assert id_normalize(" abc ") == "abc"


@given(
    user_id=any_json,
    anonymous_id=any_json,
    traits=any_json,
    context=any_json,
    previous_id=any_json,
)
def test_event_identifiers_accept_any_json_and_yield_normalized_keys(
    user_id, anonymous_id, traits, context, previous_id
):
    found = event_identifiers(
        user_id=user_id,
        anonymous_id=anonymous_id,
        traits=traits,
        context=context,
        previous_id=previous_id,
        region="US",
    )
    for kind, value in found.all_keys():
        assert value and value == value.strip()
        assert kind in {"user_id", "anonymous_id", "email", "phone", "device_id"}
    assert len(set(found.keys)) == len(found.keys)


def test_event_identifiers_gather_every_kind():
    found = event_identifiers(
        user_id="u1",
        anonymous_id="a1",
        traits={"email": "X@Y.org", "phone": "+1 415 555 0100"},
        context={"device": {"id": "d1"}, "traits": {"email": "other@y.org"}},
        previous_id="a0",
        region="US",
    )
    assert found.keys == [
        ("user_id", "u1"),
        ("anonymous_id", "a1"),
        ("email", "x@y.org"),
        ("phone", "+14155550100"),
        ("email", "other@y.org"),
        ("device_id", "d1"),
    ]
    assert found.alternatives == [("user_id", "a0"), ("anonymous_id", "a0")]
