"""JSON Schemas of the Segment spec messages that ingestion accepts, one per message type.

They describe what real SDKs send (see tests/fixtures/sdk-captures/README.md): ids may be
strings or numbers (stored as strings), `anonymousId: null` is allowed when `userId` is there,
timestamps are strings or epoch numbers (parsed leniently by `profiles.ingestion`, which reports
an unparseable one), and unknown fields are kept. Validators are compiled once, at import.

Two validators are compiled from each schema: `fastjsonschema` (the schema turned into Python
code, ~20x faster) decides validity on the hot path, and `jsonschema` explains the failures of
the few messages that do not pass, with the path of each error. The schemas stay in draft-07,
which both implement; tests/profiles/test_ingest_fuzz.py checks that the two always agree.

`errorMessage` is our own keyword (validators ignore unknown keywords): when a subschema that
carries it fails, ingestion reports that sentence instead of the validator's generic one.
"""

from collections.abc import Callable
from typing import Any

import fastjsonschema
from jsonschema import Draft7Validator

MESSAGE_TYPES = ("identify", "track", "page", "screen", "group", "alias")

# Ids are varchar(255) columns; a number is accepted and stored as its decimal string (whose
# length ingestion checks: maxLength only applies to strings).
ID_MAX_LENGTH = 255
_ID = {"type": ["string", "number"], "maxLength": ID_MAX_LENGTH}
_NULLABLE_ID = {"type": ["string", "number", "null"], "maxLength": ID_MAX_LENGTH}
_TIME = {"type": ["string", "number", "null"], "maxLength": 64}
_OBJECT = {"type": "object"}
_NULLABLE_OBJECT = {"type": ["object", "null"]}
_NAME = {"type": ["string", "null"], "maxLength": 255}


def _present(field: str) -> dict[str, Any]:
    """The field is there and is a non-empty string or a number."""
    return {
        "required": [field],
        "properties": {field: {"type": ["string", "number"], "minLength": 1}},
    }


_COMMON_PROPERTIES: dict[str, Any] = {
    "type": {"enum": list(MESSAGE_TYPES)},
    "messageId": _NULLABLE_ID,
    "userId": _NULLABLE_ID,
    "anonymousId": _NULLABLE_ID,
    "timestamp": _TIME,
    "originalTimestamp": _TIME,
    "sentAt": _TIME,
    "receivedAt": _TIME,
    "context": _NULLABLE_OBJECT,
    "integrations": _NULLABLE_OBJECT,
    "channel": {"type": ["string", "null"]},
}

_USER_OR_ANONYMOUS = {
    "anyOf": [_present("userId"), _present("anonymousId")],
    "errorMessage": "userId or anonymousId: one of them is required",
}


def _message_schema(message_type: str, properties: dict[str, Any], **rules: Any) -> dict:
    return {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"Segment {message_type} message",
        "type": "object",
        "properties": {**_COMMON_PROPERTIES, **properties},
        **rules,
    }


MESSAGE_SCHEMAS: dict[str, dict] = {
    "identify": _message_schema(
        "identify", {"traits": _NULLABLE_OBJECT}, allOf=[_USER_OR_ANONYMOUS]
    ),
    "track": _message_schema(
        "track",
        {
            "event": {"type": "string", "minLength": 1, "maxLength": 255},
            "properties": _NULLABLE_OBJECT,
        },
        required=["event"],
        allOf=[_USER_OR_ANONYMOUS],
    ),
    "page": _message_schema(
        "page",
        {"name": _NAME, "category": _NAME, "properties": _NULLABLE_OBJECT},
        allOf=[_USER_OR_ANONYMOUS],
    ),
    "screen": _message_schema(
        "screen",
        {"name": _NAME, "category": _NAME, "properties": _NULLABLE_OBJECT},
        allOf=[_USER_OR_ANONYMOUS],
    ),
    "group": _message_schema(
        "group",
        {"groupId": _ID, "traits": _NULLABLE_OBJECT},
        required=["groupId"],
        allOf=[_USER_OR_ANONYMOUS],
    ),
    # An alias joins previousId (the old id) to userId (the new one): both are needed.
    "alias": _message_schema(
        "alias",
        {"previousId": {**_ID, "minLength": 1}, "userId": {**_ID, "minLength": 1}},
        required=["previousId", "userId"],
    ),
}

for _schema in MESSAGE_SCHEMAS.values():
    Draft7Validator.check_schema(_schema)

# Explains why a message is invalid (iter_errors with paths); slow, used on failures only.
MESSAGE_VALIDATORS: dict[str, Draft7Validator] = {
    message_type: Draft7Validator(schema) for message_type, schema in MESSAGE_SCHEMAS.items()
}
# Decides validity fast: each raises fastjsonschema.JsonSchemaException on an invalid message.
FAST_VALIDATORS: dict[str, Callable[[Any], Any]] = {
    message_type: fastjsonschema.compile(schema) for message_type, schema in MESSAGE_SCHEMAS.items()
}
