"""The audit log's hash chain, as plain Python: each row's hash covers a canonical
serialisation of the row and the hash of the row before it, so changing, removing or
reordering any row breaks every hash after it.

The serialisation names every column a reader relies on except `actor_id`: that link is
cleared when a staff user is deleted (their `actor_label` stays and is hashed), and the
database allows exactly that change. Values are written in forms that survive the round trip
through either database: times in UTC with microseconds, IP addresses as their bytes, JSON with
sorted keys and
integral numbers as integers.
"""

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

# The `prev_hash` of the first row.
GENESIS = "0" * 64

CHAINED_FIELDS = (
    "created_at",
    "actor_label",
    "action",
    "resource",
    "resource_id",
    "profile_id",
    "ip",
    "details",
)


def _json_numbers(value: Any) -> Any:
    # PostgreSQL's jsonb keeps a number as the decimal JSON wrote: 1e16 comes back as the
    # integer 10000000000000000, so an integral float is hashed as that integer.
    if isinstance(value, float) and value.is_integer():
        return int(Decimal(repr(value)))
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_numbers(item) for item in value]
    return value


def _canonical_value(name: str, value: Any) -> Any:
    if value is None:
        return None
    if name == "created_at":
        assert isinstance(value, datetime)
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if name == "ip":
        return ipaddress.ip_address(value).packed.hex()
    if name == "details":
        return _json_numbers(value)
    return value


def audit_row_canonical(row: Mapping[str, Any]) -> bytes:
    """The bytes a row's hash covers (a JSON object of `CHAINED_FIELDS`, keys sorted)."""
    document = {name: _canonical_value(name, row[name]) for name in CHAINED_FIELDS}
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def audit_row_hash(row: Mapping[str, Any], *, prev_hash: str) -> str:
    return hashlib.sha256(prev_hash.encode() + b"\n" + audit_row_canonical(row)).hexdigest()


# --- anchors outside the database ----------------------------------------------------------
# Someone who can write the database (dropping the trigger as its owner) can rewrite every row
# and recompute every hash: the chain alone cannot show that. An anchor is the chain's head
# (row count, last id, last hash) written where that person cannot write, signed with a key the
# database does not hold; a rewritten chain no longer has an anchored head.


@dataclass(frozen=True)
class AuditAnchor:
    at: datetime
    rows: int
    head_id: int
    head_hash: str


class AuditAnchorForgedError(ValueError):
    """An anchor line that is not one the application wrote (bad signature or form)."""


def _anchor_mac(payload: bytes, *, key: bytes) -> str:
    return hmac.new(key, b"cdp.audit-anchor\n" + payload, hashlib.sha256).hexdigest()


def audit_anchor_line(anchor: AuditAnchor, *, key: bytes) -> bytes:
    """One line of the anchor file: the anchor as JSON and its HMAC-SHA256 under `key`."""
    document = {
        "at": anchor.at.astimezone(UTC).isoformat(timespec="microseconds"),
        "rows": anchor.rows,
        "head_id": anchor.head_id,
        "head_hash": anchor.head_hash,
    }
    payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
    document["mac"] = _anchor_mac(payload, key=key)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode() + b"\n"


def audit_anchor_parse(line: bytes, *, key: bytes) -> AuditAnchor:
    """The anchor a line holds; `AuditAnchorForgedError` unless its signature is right."""
    try:
        document = json.loads(line)
        mac = document.pop("mac")
        payload = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        if not hmac.compare_digest(mac, _anchor_mac(payload, key=key)):
            raise AuditAnchorForgedError("its signature does not match")
        return AuditAnchor(
            at=datetime.fromisoformat(document["at"]),
            rows=int(document["rows"]),
            head_id=int(document["head_id"]),
            head_hash=str(document["head_hash"]),
        )
    except AuditAnchorForgedError:
        raise
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise AuditAnchorForgedError(f"it is not an anchor ({exc})") from exc
