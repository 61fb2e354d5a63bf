"""Identifiers: the one rule for normalising what a person is known by (a pure core: no ORM).

Identity keys (`identity`), suppression and erasure hashes (`consent.hashing`) and profile
lookups (the API's `?email=` and `?phone=`, the explorer's search) all normalise here, so the
same person's identifier written two ways (`" Ann@Example.COM"`, `"+49 151 …"` and
`"0049 151 …"`) is one value everywhere, and a value that is no identifier is refused
everywhere:

- `user_id`, `anonymous_id`, `device_id`, and kinds without a rule of their own (a CRM id):
  the id as text (SDKs send numbers too; `42.0` is `"42"`), surrounding space stripped.
- `email`: stripped and lower-cased; a value without a local part and a domain around its last
  "@", or with white space inside, is not an email.
- `phone`: E.164 (`+14155550100`) via `phonenumbers`, numbers without a country code read in
  `settings.PHONE_DEFAULT_REGION`; a value that is not a valid number (a merely possible one is
  not enough) is not a phone.
- at most 320 characters (`Identity.value` is a varchar(320), the longest valid email).

The per-kind functions answer "" for "no identifier" (identity resolution calls them for every
event); `identifier_normalize` raises `InvalidIdentifierError` saying why, for people who typed
the value. `event_identifiers` reads the identifiers one Segment message carries.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers

USER_ID = "user_id"
ANONYMOUS_ID = "anonymous_id"
EMAIL = "email"
PHONE = "phone"
DEVICE_ID = "device_id"
KINDS = (USER_ID, ANONYMOUS_ID, EMAIL, PHONE, DEVICE_ID)

# Identity.value is a varchar(320): the longest valid email address.
MAX_VALUE_LENGTH = 320
# No phone number written any way is longer; parsing longer text only costs time.
MAX_PHONE_TEXT = 64
# What str.isspace() calls white space (a regex is several times faster than testing each
# character, and every processed event's email goes through here).
_WHITESPACE = re.compile(r"\s")

# (kind, normalised value): one identity key.
Key = tuple[str, str]


class InvalidIdentifierError(ValueError):
    """A value that is no identifier of its kind; the message says why."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind

    def __reduce__(self) -> tuple[type, tuple[str, str]]:
        # Pickled (a task's failure) with both arguments, not only the message.
        return type(self), (self.kind, str(self))


def id_normalize(value: Any) -> str:
    """A user id, anonymous id or device id as text; "" when there is none."""
    if value is None or isinstance(value, bool | dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text if len(text) <= MAX_VALUE_LENGTH else ""


def email_normalize(value: Any) -> str:
    """An email address stripped and lower-cased; "" when the value is not an email."""
    if not isinstance(value, str):
        return ""
    email = value.strip().lower()
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain or len(email) > MAX_VALUE_LENGTH:
        return ""
    if _WHITESPACE.search(email):
        return ""
    return email


@lru_cache(maxsize=8192)
def _phone_e164(text: str, region: str) -> str:
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return ""
    if not phonenumbers.is_valid_number(number):
        return ""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def phone_normalize(value: Any, *, region: str | None = None) -> str:
    """A phone number in E.164; "" when the value is not a valid phone number."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        return ""
    text = str(value).strip()
    if not text or len(text) > MAX_PHONE_TEXT:
        return ""
    if region is None:
        from django.conf import settings

        region = settings.PHONE_DEFAULT_REGION
    return _phone_e164(text, region)


# Each kind's rule; kinds not listed follow id_normalize.
NORMALIZERS: dict[str, Callable[[Any], str]] = {
    USER_ID: id_normalize,
    ANONYMOUS_ID: id_normalize,
    EMAIL: email_normalize,
    PHONE: phone_normalize,
    DEVICE_ID: id_normalize,
}


def identifier_normalize(kind: str, value: Any) -> str:
    """The normalised value of an identifier of `kind`; InvalidIdentifierError saying why when
    the value is none."""
    normalized = NORMALIZERS.get(kind, id_normalize)(value)
    if not normalized:
        raise InvalidIdentifierError(kind, _refusal(kind, value))
    return normalized


def _refusal(kind: str, value: Any) -> str:
    """Why `value` is no identifier of `kind` (asked only once it was refused)."""
    if (
        value is None
        or isinstance(value, bool | dict | list)
        or (kind == EMAIL and not isinstance(value, str))
        or (kind == PHONE and not isinstance(value, str | int))
    ):
        return f"{kind} must be a string"
    text = str(value).strip()
    if not text:
        return f"{kind} must not be empty"
    if len(text) > MAX_VALUE_LENGTH:
        return f"{kind} is longer than {MAX_VALUE_LENGTH} characters"
    if kind == EMAIL:
        return "email is not an email address"
    if kind == PHONE:
        return "phone is not a phone number"
    return f"{kind} is not an identifier"


@dataclass
class EventIdentifiers:
    """The identity keys one event carries.

    `keys` all belong to the person who sent the event. `alternatives` are lookups where any
    one that already exists belongs to them, and when none exists the first is created: an
    alias's `previousId` may be an earlier user id or an anonymous id.
    """

    keys: list[Key] = field(default_factory=list)
    alternatives: list[Key] = field(default_factory=list)

    def all_keys(self) -> list[Key]:
        return self.keys + self.alternatives


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def event_identifiers(
    *,
    user_id: Any,
    anonymous_id: Any,
    traits: Mapping[str, Any] | None,
    context: Mapping[str, Any] | None,
    previous_id: Any = None,
    region: str | None = None,
) -> EventIdentifiers:
    """The identity keys of one event, from its ids, traits and context.

    Email comes from `traits.email` or `context.traits.email`; phone from `traits.phone` or
    `context.traits.phone`; device id from `context.device.id`. `previous_id` is an alias's
    `previousId`.
    """
    traits = _mapping(traits)
    context = _mapping(context)
    context_traits = _mapping(context.get("traits"))
    found = EventIdentifiers()

    def add(kind: str, value: str) -> None:
        if value and (kind, value) not in found.keys:
            found.keys.append((kind, value))

    add(USER_ID, id_normalize(user_id))
    add(ANONYMOUS_ID, id_normalize(anonymous_id))
    for source in (traits, context_traits):
        add(EMAIL, email_normalize(source.get("email")))
        add(PHONE, phone_normalize(source.get("phone"), region=region))
    add(DEVICE_ID, id_normalize(_mapping(context.get("device")).get("id")))

    previous = id_normalize(previous_id)
    if previous:
        found.alternatives = [
            key for key in ((USER_ID, previous), (ANONYMOUS_ID, previous)) if key not in found.keys
        ]
    return found
