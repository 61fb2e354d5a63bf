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
import ipaddress
import json
from collections.abc import Mapping
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
