"""Pure core: read consent signals out of an event's context. No ORM here.

Three dialects are understood, on any event type:
- Segment: `context.consent.categoryPreferences` = {"Advertising": false, "Analytics": true}
- RudderStack: `context.consentManagement` = {"allowedConsentIds": ["C0001"],
  "deniedConsentIds": ["C0004"], "provider": "oneTrust"} (ids or category names)
- Google Consent Mode v2: `ad_storage`, `analytics_storage`, `ad_user_data`,
  `ad_personalization` = "granted" | "denied" (or booleans), found in `context.consent`,
  `context.consent.categoryPreferences`, `context.consentMode`, `context.googleConsentMode`
  or `context.gcm`.

`category_preferences(context)` returns {category (lower-case): granted}. The mapping from
categories to our purposes is configuration (`ConsentCategoryMapping`); `purposes_from(...)`
applies one, and when several categories of one message name the same purpose a denial wins.
"""

from collections.abc import Mapping
from typing import Any

GCM_FIELDS = ("ad_storage", "analytics_storage", "ad_user_data", "ad_personalization")
_GCM_CONTAINERS = ("consentMode", "googleConsentMode", "gcm")
_SIGNAL_KEYS = frozenset(("consent", "consentManagement", *_GCM_CONTAINERS))

# The documented default mapping (installed by migration 0002, editable in the admin).
DEFAULT_CATEGORY_MAPPING: dict[str, str] = {
    # Segment / generic CMP category names
    "analytics": "analytics",
    "performance": "analytics",
    "statistics": "analytics",
    "functional": "personalization",
    "personalization": "personalization",
    "preferences": "personalization",
    "advertising": "advertising",
    "marketing": "advertising",
    "targeting": "advertising",
    "email": "email_marketing",
    "email_marketing": "email_marketing",
    "push": "push",
    # OneTrust category ids (RudderStack's consentManagement sends these)
    "c0002": "analytics",
    "c0003": "personalization",
    "c0004": "advertising",
    # Google Consent Mode v2
    "analytics_storage": "analytics",
    "ad_storage": "advertising",
    "ad_user_data": "advertising",
    "ad_personalization": "advertising",
}


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in {"granted", "true", "yes", "1", "allow", "allowed", "opt_in", "on"}:
            return True
        if lowered in {"denied", "false", "no", "0", "deny", "opt_out", "off"}:
            return False
    if isinstance(value, int):
        return bool(value)
    return None


def _merge(into: dict[str, bool], category: Any, granted: bool | None) -> None:
    if granted is None or not isinstance(category, str) or not category.strip():
        return
    key = category.strip().lower()[:120]
    # Two signals about one category in one message: the denial wins.
    into[key] = into.get(key, True) and granted


def category_preferences(context: Any) -> dict[str, bool]:
    """Every consent category this context states, lower-cased, to granted/denied."""
    found: dict[str, bool] = {}
    # Decoded JSON is made of dicts: plain `dict` checks keep this cheap, as it runs per event.
    if not isinstance(context, dict) or not _SIGNAL_KEYS.intersection(context):
        return found
    consent = context.get("consent")
    if isinstance(consent, dict):
        prefs = consent.get("categoryPreferences")
        if isinstance(prefs, dict):
            for category, value in prefs.items():
                _merge(found, category, _as_bool(value))
        for field in GCM_FIELDS:
            if field in consent:
                _merge(found, field, _as_bool(consent[field]))
    management = context.get("consentManagement")
    if isinstance(management, dict):
        for key, granted in (("allowedConsentIds", True), ("deniedConsentIds", False)):
            ids = management.get(key)
            if isinstance(ids, list | tuple):
                for category in ids:
                    _merge(found, category, granted)
            elif isinstance(ids, dict):  # {"C0001": "Necessary", ...}
                for category, name in ids.items():
                    _merge(found, category, granted)
                    _merge(found, name, granted)
    for container in _GCM_CONTAINERS:
        block = context.get(container)
        if isinstance(block, dict):
            for field in GCM_FIELDS:
                if field in block:
                    _merge(found, field, _as_bool(block[field]))
    return found


def purposes_from(preferences: Mapping[str, bool], mapping: Mapping[str, str]) -> dict[str, bool]:
    """Purpose code -> granted, through `mapping` (category -> purpose code). A category equal
    to a purpose code maps to it without configuration; unknown categories are ignored."""
    purposes: dict[str, bool] = {}
    known_codes = set(mapping.values())
    for category, granted in preferences.items():
        code = mapping.get(category) or (category if category in known_codes else None)
        if code is None:
            continue
        purposes[code] = purposes.get(code, True) and granted
    return purposes
