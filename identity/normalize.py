"""Normalizing identifiers into exact identity keys: a pure core, no ORM.

An identity key is a `(kind, value)` pair with the value normalized, so that the same person's
identifier written two ways (`" Ann@Example.COM"`, `"+1 (415) 555-0100"`) is one key:

- `user_id`, `anonymous_id`: the id as text (SDKs send numbers too), surrounding space stripped.
- `email`: stripped and lower-cased; a value without a local part and a domain is not an email.
- `phone`: E.164 (`+14155550100`) via `phonenumbers`, numbers without a country code read in
  `settings.PHONE_DEFAULT_REGION`; a value that is not a valid phone number is not an identity.
- `device_id`: `context.device.id`, as text, stripped.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import phonenumbers

from identity.models import IdentityKind

Key = tuple[str, str]

# Plain strings, not the enum members: keys are compared and hashed against database values.
USER_ID = IdentityKind.USER_ID.value
ANONYMOUS_ID = IdentityKind.ANONYMOUS_ID.value
EMAIL = IdentityKind.EMAIL.value
PHONE = IdentityKind.PHONE.value
DEVICE_ID = IdentityKind.DEVICE_ID.value

# Identity.value is a varchar(320): the longest valid email address.
MAX_VALUE_LENGTH = 320
# What str.isspace() calls white space (a regex is several times faster than testing each
# character, and every processed event's email goes through here).
_WHITESPACE = re.compile(r"\s")


def _text(value: Any) -> str:
    if value is None or isinstance(value, bool | dict | list):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value).strip()
    return text if len(text) <= MAX_VALUE_LENGTH else ""


def id_normalize(value: Any) -> str:
    """A user id, anonymous id or device id as text; "" when there is none."""
    return _text(value)


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
    if not text or len(text) > 64:
        return ""
    if region is None:
        from django.conf import settings

        region = settings.PHONE_DEFAULT_REGION
    return _phone_e164(text, region)


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
