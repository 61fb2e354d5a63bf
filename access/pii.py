"""The one gate through which personal data leaves: API responses, pages, CSV exports, access
exports and webhooks all ask `pii_for(viewer)` and show what the returned `PiiView` gives them.

`pii_visible(viewer)` is the only place that decides who sees personal data as stored:
- a call made with an API key: the key holds the `pii:read` scope;
- a staff session: the user holds one of PII_VISIBLE_ROLES (compliance and admin by default);
- anything else (no viewer, a webhook receiver, a template without a user): nobody.

Everyone else gets masked values (`j•••@e•••.com`, `•••••••4567`, `203.0.113.0`). What counts
as personal data: the traits named in PII_TRAITS, every identifier (user id, anonymous id,
email, phone, device ids and tokens), IP addresses, user agents and precise location
(latitude, longitude), wherever they sit in a JSON document, and email addresses inside free
text. Marketing exports replace identifiers by keyed pseudonyms (`pii_pseudonym`) instead.

This lives in the bottom layer so that every app (profiles included) calls the same gate.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Mapping
from typing import Any

from django.conf import settings
from rest_framework import serializers

from access.models import ApiKey
from access.roles import has_role

PII_SCOPE = "pii:read"

# Keys whose values are personal data wherever they appear (traits, properties, context,
# stored payloads, explanations), compared without case, "_" or "-": Segment's and our names.
IDENTIFIER_KEYS = frozenset(
    {
        "userid",
        "anonymousid",
        "previousid",
        "email",
        "phone",
        "deviceid",
        "advertisingid",
        "token",
        "ip",
        "useragent",
        "useragentdata",
        "latitude",
        "longitude",
        "externalids",
    }
)
# Keys of an access export whose text says what a row is, not who: kept by `PiiView.export`.
EXPORT_STRUCTURE_KEYS = frozenset(
    {
        "format",
        "regulationtype",
        "generatedat",
        "kind",
        "type",
        "event",
        "purpose",
        "source",
        "status",
        "reason",
        "createdat",
        "updatedat",
        "timestamp",
        "originaltimestamp",
        "receivedat",
        "processedat",
        "sentat",
        "firstseen",
        "lastseen",
        "occurredat",
        "recordedat",
        "enteredat",
        "exitedat",
        "messageid",
    }
)
EMAIL_IN_TEXT = re.compile(r"[^\s@<>\"'(),;:]+@[^\s@<>\"'(),;:]+\.[A-Za-z]{2,}")
MASK = "•"


def _key(name: Any) -> str:
    return str(name).lower().replace("_", "").replace("-", "")


def pii_trait_names() -> set[str]:
    return {_key(name) for name in settings.PII_TRAITS}


def pii_is_trait(name: str) -> bool:
    """Whether a trait (or a dotted trait path, e.g. `address.city`) holds personal data."""
    names = pii_trait_names() | IDENTIFIER_KEYS
    return any(_key(part) in names for part in str(name).split("."))


def _api_key_of(viewer: Any) -> ApiKey | None:
    auth = getattr(viewer, "auth", None)  # a DRF request
    if isinstance(auth, ApiKey):
        return auth
    user = getattr(viewer, "user", viewer)  # a request, or already its user
    api_key = getattr(user, "api_key", None)  # access.auth.ApiKeyUser
    return api_key if isinstance(api_key, ApiKey) else None


def pii_visible(viewer: Any) -> bool:
    """May `viewer` (a staff user, an API key's user, a request, or None) see personal data
    as stored? The one decision every output path takes its masking from."""
    if viewer is None:
        return False
    api_key = _api_key_of(viewer)
    if api_key is not None:
        return api_key.has_scope(PII_SCOPE)
    return has_role(getattr(viewer, "user", viewer), *settings.PII_VISIBLE_ROLES)


def pii_mask_value(value: Any, *, kind: str = "") -> str:
    """'jane.doe@example.com' -> 'j•••@e•••.com', '+15551234567' -> '•••••••4567',
    an IP address -> its network (/24, /48), anything else -> its first character."""
    if value is None or value == "":
        return ""
    text = str(value)
    if "@" in text:
        local, _, domain = text.partition("@")
        host, dot, tld = domain.rpartition(".")
        masked_domain = f"{host[:1]}{MASK * 3}{dot}{tld}" if dot else f"{domain[:1]}{MASK * 3}"
        return f"{local[:1]}{MASK * 3}@{masked_domain}"
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        pass
    else:
        prefix = 24 if address.version == 4 else 48
        return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False).network_address)
    if len(text) <= 4:
        return MASK * len(text)
    digits = sum(c.isdigit() for c in text)
    if kind == "phone" or digits >= len(text) // 2:
        return MASK * (len(text) - 4) + text[-4:]
    return text[:1] + MASK * min(8, len(text) - 1)


def _mask_all(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask_all(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_all(v) for v in value]
    if value is None or isinstance(value, bool):
        return value
    return pii_mask_value(value)


def pii_mask_text(text: str) -> str:
    """Free text (an error message, a URL) with the email addresses in it masked."""
    return EMAIL_IN_TEXT.sub(lambda m: pii_mask_value(m.group(0)), text)


class PiiView:
    """Personal data as one viewer may see it: as stored when `visible`, masked otherwise."""

    def __init__(self, *, visible: bool) -> None:
        self.visible = visible
        # Read once per view: a page or an API list asks for every row and field.
        self._personal_keys = pii_trait_names() | IDENTIFIER_KEYS

    def value(self, value: Any, *, kind: str = "") -> Any:
        """One identifier or PII trait value (its `kind` or trait name helps the mask)."""
        return value if self.visible else pii_mask_value(value, kind=kind)

    def is_personal(self, name: str) -> bool:
        """Whether values of this trait or field (a dotted path) are personal data."""
        return any(_key(part) in self._personal_keys for part in str(name).split("."))

    def trait_value(self, name: str, value: Any) -> Any:
        """The value of the trait `name` (a dotted path): masked in full if it is personal."""
        if self.visible or not self.is_personal(name):
            return value
        return _mask_all(value)

    def text(self, text: str) -> str:
        return text if self.visible else pii_mask_text(text)

    def traits(self, traits: Mapping[str, Any] | None) -> dict[str, Any]:
        """Traits with PII_TRAITS and identifiers masked (nested values in full)."""
        if self.visible:
            return dict(traits or {})
        return self._document(traits or {}, self._personal_keys)

    def document(self, document: Any) -> Any:
        """Any JSON document (event properties or context, a stored payload, an access
        export): identifiers, IPs, user agents, locations and nested `traits` masked,
        email addresses in strings too. Names like `name` are left alone outside traits."""
        if self.visible:
            return document
        return self._document(document, IDENTIFIER_KEYS)

    def export(self, document: Any) -> Any:
        """A document that is all about one person (an access export): every text value
        masked except the export's own structure (kinds, types, event names, times), on top
        of what `document` masks."""
        if self.visible:
            return document
        return self._export(self.document(document))

    def _export(self, value: Any, key: str = "") -> Any:
        if isinstance(value, Mapping):
            return {k: self._export(v, _key(k)) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self._export(item, key) for item in value]
        if isinstance(value, str) and key not in EXPORT_STRUCTURE_KEYS and MASK not in value:
            return pii_mask_value(value)
        return value

    def _document(self, value: Any, keys: frozenset[str] | set[str]) -> Any:
        if isinstance(value, Mapping):
            if set(value) >= {"kind", "value"} and isinstance(value.get("kind"), str):
                # An identity, as the APIs and exports list them.
                return {**value, "value": pii_mask_value(value["value"], kind=value["kind"])}
            masked = {}
            for name, item in value.items():
                if _key(name) in keys:
                    masked[name] = _mask_all(item)
                elif _key(name) == "traits" and isinstance(item, Mapping):
                    masked[name] = self.traits(item)
                else:
                    masked[name] = self._document(item, keys)
            return masked
        if isinstance(value, list | tuple):
            return [self._document(item, keys) for item in value]
        if isinstance(value, str):
            return pii_mask_text(value)
        return value


def pii_for(viewer: Any) -> PiiView:
    """The gate: what `viewer` may see of personal data (see `pii_visible`)."""
    return PiiView(visible=pii_visible(viewer))


def pii_pseudonym(value: Any) -> str:
    """A stable pseudonym (keyed hash): the same person gets the same token in every export,
    and nobody without PRIVACY_HASH_KEY can reverse it."""
    digest = hmac.new(
        settings.PRIVACY_HASH_KEY.encode(), f"pii:{value}".encode(), hashlib.sha256
    ).hexdigest()
    return f"pii_{digest[:20]}"


# --- API serializers: fields that read the viewer from the serializer's context -------------
# A serializer built without `context={"request": request}` has no viewer, so it masks.


def _field_view(field: serializers.Field) -> PiiView:
    # One view per serialization: every field of every row shares the root's context.
    context = field.context
    if "pii_view" not in context:
        context["pii_view"] = pii_for(context.get("request"))
    view: PiiView = context["pii_view"]
    return view


class PiiTraitsField(serializers.JSONField):
    """Traits, through the gate (`PiiView.traits`)."""

    def to_representation(self, value: Any) -> Any:
        return _field_view(self).traits(value)


class PiiDocumentField(serializers.JSONField):
    """A JSON document (properties, context, payloads), through the gate (`PiiView.document`)."""

    def to_representation(self, value: Any) -> Any:
        return _field_view(self).document(value)


class PiiValueField(serializers.CharField):
    """One identifier or PII value (an IP address, an email), through the gate."""

    def __init__(self, *, kind: str = "", **kwargs: Any) -> None:
        self.kind = kind
        super().__init__(**kwargs)

    def to_representation(self, value: Any) -> Any:
        return _field_view(self).value(super().to_representation(value), kind=self.kind)


class PiiTextField(serializers.CharField):
    """Free text that may name someone (an error message): email addresses masked."""

    def to_representation(self, value: Any) -> Any:
        return _field_view(self).text(super().to_representation(value))
