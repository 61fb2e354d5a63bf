"""Identifier normalization (profiles.identifiers): examples and properties over its input space."""

import pickle

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st

from consent.hashing import SUBJECT_KINDS, identifier_hash
from consent.selectors import subject_identifiers
from profiles.identifiers import (
    InvalidIdentifierError,
    email_normalize,
    event_identifiers,
    id_normalize,
    identifier_normalize,
    phone_normalize,
)
from profiles.selectors.profiles import ProfileFilters, profile_identifier_lookups

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


@pytest.mark.parametrize(
    ("kind", "value", "reason"),
    [
        ("email", None, "email must be a string"),
        ("email", 42, "email must be a string"),
        ("user_id", {"id": 1}, "user_id must be a string"),
        ("phone", True, "phone must be a string"),
        ("user_id", "   ", "user_id must not be empty"),
        ("anonymous_id", "a" * 321, "anonymous_id is longer than 320 characters"),
        ("email", "no-at-sign", "email is not an email address"),
        ("email", "a b@example.com", "email is not an email address"),
        ("phone", "+1 555 555 0123", "phone is not a phone number"),  # possible, not valid
    ],
)
def test_a_value_that_is_no_identifier_is_refused_saying_why(kind, value, reason):
    with pytest.raises(InvalidIdentifierError, match=f"^{reason}$") as refused:
        identifier_normalize(kind, value)
    assert refused.value.kind == kind


def test_kinds_without_a_rule_of_their_own_follow_the_id_rule():
    assert identifier_normalize("crm_id", " CRM-7 ") == "CRM-7"
    assert identifier_normalize("user_id", 42.0) == "42"


def _phone_forms() -> st.SearchStrategy[str]:
    """A valid number of some region written the ways people write it, padded or not."""
    formats = [
        phonenumbers.PhoneNumberFormat.E164,
        phonenumbers.PhoneNumberFormat.INTERNATIONAL,
        phonenumbers.PhoneNumberFormat.NATIONAL,
        phonenumbers.PhoneNumberFormat.RFC3966,
    ]
    return st.builds(
        lambda region, form, pad: (
            pad + phonenumbers.format_number(phonenumbers.example_number(region), form) + pad
        ),
        st.sampled_from(["US", "GB", "DE", "FR", "IN", "BR", "JP"]),
        st.sampled_from(formats),
        st.sampled_from(["", " ", "\t"]),
    )


# Values near the edges of the rules, where two copies of a rule would disagree: emails with a
# part missing or white space inside, numbers that are possible but not valid, or written with
# an international prefix.
email_like = st.builds(
    lambda pad, local, at, domain: f"{pad}{local}{at}{domain}{pad}",
    st.sampled_from(["", " ", "\t"]),
    st.sampled_from(["", "ann", "Ann.Lee", "a b", "x@y"]),
    st.sampled_from(["@", ""]),
    st.sampled_from(["", "example.com", "Example.COM", "ex ample.com"]),
)
phone_like = st.from_regex(r"[+]?(00)?[0-9 ().-]{3,18}", fullmatch=True)

identifier_inputs = st.one_of(
    st.text(max_size=40),
    email_like,
    st.emails().map(lambda email: f"  {email.upper()} "),
    _phone_forms(),
    phone_like,
    st.integers(),
    st.floats(),
    st.none(),
    st.booleans(),
    st.text(min_size=318, max_size=330, alphabet="ab@."),
)


def _identity_key(kind: str, value: object) -> str | None:
    """The value identity resolution keys an event's identifier of `kind` by (None: no key)."""
    if kind in ("email", "phone"):
        found = event_identifiers(user_id=None, anonymous_id=None, traits={kind: value}, context={})
    else:
        found = event_identifiers(
            user_id=value if kind == "user_id" else None,
            anonymous_id=value if kind == "anonymous_id" else None,
            traits=None,
            context=None,
        )
    return dict(found.keys).get(kind)


@given(kind=st.sampled_from(SUBJECT_KINDS), value=identifier_inputs)
def test_an_identity_key_a_profile_lookup_and_a_suppression_hash_agree_on_any_input(kind, value):
    key = _identity_key(kind, value)
    # Suppression and erasure: the subject of a privacy request, normalised and hashed.
    try:
        subject = subject_identifiers({kind: value})[kind]
    except ValueError:
        subject = None
    assert subject == key
    if key is not None:
        # The hashes of the identity index's own values (a suppressed profile's identifiers)
        # are the subject's.
        assert identifier_hash(kind, identifier_normalize(kind, key)) == identifier_hash(
            kind, subject
        )
    # Profile lookups: the API's identifier filters (query parameters are text).
    if isinstance(value, str):
        try:
            lookup = profile_identifier_lookups(filters=ProfileFilters(**{kind: value}))[kind]
        except InvalidIdentifierError:
            lookup = None
        assert lookup == key


def test_a_refusal_survives_pickling_with_its_kind():
    pickled = pickle.dumps(InvalidIdentifierError("phone", "phone is not a phone"))
    refusal = pickle.loads(pickled)  # noqa: S301 - the test's own bytes
    assert (refusal.kind, str(refusal)) == ("phone", "phone is not a phone")
