"""The rows of the profile 360° page: computed features and context, labelled for reading."""

from typing import Any, NamedTuple

from django.utils import timezone

from profiles.features import FEATURE_LABELS, MONEY_FEATURES
from profiles.models import Profile
from profiles.selectors.profiles import profile_computed_features


class FeatureRow(NamedTuple):
    label: str  # in plain words, as segments name the feature
    value: Any
    money: bool  # an amount, shown with two decimals


# The features the 360° page shows, in reading order.
PAGE_FEATURES = (
    "event_count",
    "session_count",
    "first_seen",
    "last_seen",
    "last_seen_days",
    "frequency",
    "monetary",
    "average_order_value",
    "lifetime_value",
    "recency_days",
    "first_order_at",
    "last_order_at",
)


def profile_feature_rows(*, profile: Profile) -> list[FeatureRow]:
    """The computed features for the 360° page, labelled, in reading order."""
    values = {
        **profile_computed_features(profile),
        "first_seen": profile.first_seen,
        "last_seen": profile.last_seen,
        "last_seen_days": (
            (timezone.now() - profile.last_seen).days if profile.last_seen else None
        ),
    }
    return [
        FeatureRow(FEATURE_LABELS[name], values[name], name in MONEY_FEATURES)
        for name in PAGE_FEATURES
    ]


ACRONYMS = {"os": "OS", "ip": "IP", "id": "ID", "url": "URL", "utm": "UTM"}


def _context_label(path: str) -> str:
    plain = path.replace("_", " ").replace(".", " ")
    # camelCase → words: "userAgent" → "user Agent"
    spaced = "".join(f" {ch}" if ch.isupper() else ch for ch in plain)
    words = [ACRONYMS.get(word, word) for word in spaced.lower().split()]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


# Context groups in the order a reader looks for them; anything else follows alphabetically.
CONTEXT_ORDER = (
    "device",
    "os",
    "browser",
    "userAgent",
    "locale",
    "timezone",
    "location",
    "ip",
    "campaign",
    "referrer",
    "page",
    "app",
    "screen",
    "network",
    "library",
)


def profile_context_rows(*, context: dict[str, Any]) -> list[tuple[str, str]]:
    """Flatten a profile's context (Segment's nested `context` shape, or flat) into labelled
    rows: {"device": {"type": "mobile"}} → ("Device type", "mobile")."""
    rows: list[tuple[str, str]] = []

    def walk(prefix: str, value: Any, depth: int) -> None:
        if isinstance(value, dict) and depth < 3:
            for key in sorted(value, key=str):
                walk(f"{prefix}.{key}" if prefix else str(key), value[key], depth + 1)
        elif value not in (None, "", [], {}):
            text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            rows.append((prefix, text))

    if not isinstance(context, dict):
        return rows
    order = {key: n for n, key in enumerate(CONTEXT_ORDER)}
    for key in sorted(context, key=lambda k: (order.get(k, len(order)), str(k))):
        walk(str(key), context[key], 1)
    return [(_context_label(path), text) for path, text in rows]
