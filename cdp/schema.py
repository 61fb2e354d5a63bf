"""The OpenAPI schema's conventions, applied once to every operation (drf-spectacular
postprocessing hook `api_conventions`), and the authentication schemes, so that /api/schema/
describes what is served:

- every list answers an envelope `{"results": [...], "next": url|null}` (keyset lists; the
  offset-paginated audit log and privacy requests add `count` and `previous`); only the
  consent purposes (`x-plain-array`) are a plain array;
- an optional query parameter whose empty value counts as absent says `allowEmptyValue`
  (the view names them in `x-empty-is-absent`); no string may hold NUL (access/parsers.py);
- the errors: 400 with what is wrong by field, 401/403 (key or role), 404 (an unknown id, also
  for a path that is not an id: cdp.views.api_not_found), 429 (throttled), each a JSON object;
- links from each create to the routes of the object it made (stateful clients and tests);
- the Segment-compatible ingestion routes under /v1/ (plain Django views, outside DRF), their
  request bodies from the JSON Schemas ingestion validates with (profiles.schemas) and their
  `{"code", "message"}` errors; beside them `/v1/decide` (experiences.decide_views), authorised
  and answered the same way.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from access.api_fields import NOT_BLANK, openapi_30
from campaigns.api import definition_components as campaign_definition_components
from experiences.api import audience_components
from experiences.decide_views import MAX_PLACEMENTS
from experiences.definition import MAX_PAGE_VALUE, PAGE_FIELDS
from profiles.identifiers import MAX_VALUE_LENGTH
from profiles.schemas import MESSAGE_SCHEMAS
from segments.api import definition_components

SHORT_ROUTES = {
    "identify": "i",
    "track": "t",
    "page": "p",
    "screen": "s",
    "group": "g",
    "alias": "a",
}


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "access.auth.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "An API key: `Authorization: Bearer <key>`, scoped per resource "
            "(`profiles:read`, `profiles:write`, ...; `pii:read` to see personal data).",
        }


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"type": "object"}}},
    }


API_ERRORS = {
    "401": _error('No or an invalid API key / session: `{"detail"}`.'),
    "403": _error("The key's scopes or the user's role do not allow this: `{\"detail\"}`."),
    "429": _error("Too many requests for this key; `Retry-After` says when to retry."),
}
BAD_REQUEST = _error('What is wrong, by field (or `{"detail"}`).')
NOT_FOUND = _error('No such object: `{"detail"}`.')


def _envelope(items: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["results"],
        "properties": {
            "results": items,
            "next": {
                "type": "string",
                "format": "uri",
                "nullable": True,
                "description": "The next page's URL (keyset cursor); null on the last page.",
            },
            "count": {"type": "integer", "description": "Offset-paginated lists only."},
            "previous": {"type": "string", "format": "uri", "nullable": True},
        },
    }


# A view lists, in this operation extension, the optional query parameters for which an empty
# value counts as absent (as DRF's serializers read a query string: `?status=` is no filter).
EMPTY_IS_ABSENT = "x-empty-is-absent"


# A view whose request body is a raw schema (drf-spectacular then marks the body optional) says
# in this extension that the body is required.
BODY_REQUIRED = "x-body-required"


def _api_operation(operation: dict[str, Any]) -> None:
    if operation.pop(BODY_REQUIRED, False):
        operation["requestBody"]["required"] = True
    empty_is_absent = set(operation.pop(EMPTY_IS_ABSENT, ()))
    for parameter in operation.get("parameters", []):
        if parameter["name"] in empty_is_absent and parameter["in"] == "query":
            parameter["allowEmptyValue"] = True
    # JSON is the API's format; form parsers only exist for clients that POST an empty form to
    # an action endpoint, so they are not offered as a way to send data beside JSON. (A file
    # upload, which takes multipart only, keeps it.)
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        for media_type in [m for m in content if m != "application/json"]:
            del content[media_type]
    responses = operation.setdefault("responses", {})
    parameters = operation.get("parameters", [])
    for status, response in API_ERRORS.items():
        responses.setdefault(status, response)
    if parameters or "requestBody" in operation:
        responses.setdefault("400", BAD_REQUEST)
    if any(p.get("in") == "path" for p in parameters):
        responses.setdefault("404", NOT_FOUND)
    if operation.pop("x-plain-array", False):
        return
    for response in responses.values():
        media = response.get("content", {}).get("application/json", {})
        if media.get("schema", {}).get("type") == "array":
            media["schema"] = _envelope(media["schema"])


# --- Ingestion (/v1/) ------------------------------------------------------------------------

# Ingestion parses `timestamp`, `originalTimestamp` and `sentAt` (profiles.ingestion.messages:
# ISO 8601 or epoch seconds/milliseconds, years 1900 to 2200; empty or null: absent) and
# refuses the message when one does not parse. It also reads RFC 2822 and other common formats
# for the SDKs that send them, which the schema does not promise (tests/cdp/test_api_fuzz.py).
_EPOCH_MIN_S, _EPOCH_MAX_S = -2_208_988_800, 7_258_118_400  # 1900-01-01, 2200-01-01 (UTC)
_EPOCH_MS_FROM = 100_000_000_000  # beyond this magnitude a number is milliseconds
PARSED_TIME = {
    "nullable": True,
    "description": "ISO 8601 or epoch seconds or milliseconds, years 1900 to 2200; empty or "
    "null: absent.",
    "anyOf": [
        {"type": "string", "format": "date-time", "pattern": r"^(19|20|21)\d\d-", "maxLength": 64},
        {"type": "string", "enum": [""]},
        {"type": "number", "minimum": _EPOCH_MIN_S, "maximum": _EPOCH_MAX_S},
        {
            "type": "number",
            "minimum": _EPOCH_MS_FROM,
            "exclusiveMinimum": True,
            "maximum": _EPOCH_MAX_S * 1000,
        },
        {
            "type": "number",
            "minimum": _EPOCH_MIN_S * 1000,
            "maximum": -_EPOCH_MS_FROM,
            "exclusiveMaximum": True,
        },
    ],
}


def _times_described(schema: dict[str, Any]) -> None:
    for name in ("timestamp", "originalTimestamp", "sentAt"):
        schema["properties"][name] = copy.deepcopy(PARSED_TIME)
    schema["properties"]["receivedAt"]["description"] = "Ignored: the server sets it."


INGEST_ERRORS = {
    "400": {
        "description": "`malformed_json`, `invalid_request` or `invalid_message`, with where.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}},
    },
    "401": {
        "description": "`invalid_write_key`: no write key, or not one of an enabled source.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}},
    },
    "413": {
        "description": "`request_too_large` / `message_too_large`.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}},
    },
}
INGEST_SUCCESS = {
    "200": {
        "description": "Accepted: stored durably before this answer.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestSuccess"}}},
    }
}


def _ingest_operation(
    summary: str, description: str, body: dict[str, Any], operation_id: str
) -> dict[str, Any]:
    return {
        "operationId": operation_id,
        "tags": ["ingestion"],
        "summary": summary,
        "description": description,
        "security": [{"writeKey": []}],
        "requestBody": {"required": True, "content": {"application/json": {"schema": body}}},
        "responses": {**INGEST_SUCCESS, **INGEST_ERRORS},
    }


def _ingest_paths(components: dict[str, Any]) -> dict[str, Any]:
    schemas = components.setdefault("schemas", {})
    schemas["IngestSuccess"] = {
        "type": "object",
        "required": ["success"],
        "properties": {"success": {"type": "boolean", "enum": [True]}},
    }
    schemas["IngestError"] = {
        "type": "object",
        "required": ["code", "message"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
    }
    components.setdefault("securitySchemes", {})["writeKey"] = {
        "type": "http",
        "scheme": "basic",
        "description": "A source's write key as the user name, empty password (Segment's "
        "HTTP Tracking API); `writeKey` in the body or `?writeKey=` also work.",
    }
    paths: dict[str, Any] = {}
    for message_type, json_schema in MESSAGE_SCHEMAS.items():
        name = f"Segment{message_type.capitalize()}"
        schemas[name] = openapi_30(copy.deepcopy(json_schema))
        _times_described(schemas[name])
        # Whatever the message says, the route sets it.
        schemas[name]["properties"]["type"] = {"description": "Ignored: the route sets it."}
        ref = {"$ref": f"#/components/schemas/{name}"}
        for path, browser in ((message_type, False), (SHORT_ROUTES[message_type], True)):
            paths[f"/v1/{path}"] = {
                "post": _ingest_operation(
                    f"One {message_type} message" + (" (browser SDK)" if browser else ""),
                    "Segment's spec; the route sets `type`. Invalid: 400 and nothing stored."
                    + (" Timestamps are corrected for the device's clock skew." if browser else ""),
                    ref,
                    f"ingest_{path}",
                )
            }
    batch = {
        "type": "object",
        "required": ["batch"],
        "properties": {
            "batch": {
                "type": "array",
                # Not refused whatever it is: an invalid message (even one that is no
                # object) is quarantined with the reason, the others stored.
                "items": {
                    "description": "A message as `/v1/<type>` takes it, with its `type`. "
                    "An invalid message is quarantined, the others stored.",
                },
            },
            "context": {"type": "object", "nullable": True},
            "integrations": {"type": "object", "nullable": True},
            "sentAt": {
                "nullable": True,
                "description": "The sender's clock when it sent the batch (kept as sent).",
            },
        },
    }
    for path, summary in (
        ("batch", "Many messages"),
        ("import", "Many messages (historical import)"),
        ("b", "Many messages (browser SDK)"),
    ):
        paths[f"/v1/{path}"] = {
            "post": _ingest_operation(
                summary,
                "Invalid messages are quarantined (see Data → Quarantine), the others stored.",
                batch,
                f"ingest_{path}",
            )
        }
    paths["/v1/projects/{writeKey}/settings"] = {
        "get": {
            "operationId": "ingest_project_settings",
            "tags": ["ingestion"],
            "summary": "The browser SDK's CDN settings, pointing it at this server",
            "security": [{}],
            "parameters": [
                {"name": "writeKey", "in": "path", "required": True, "schema": {"type": "string"}}
            ],
            "responses": {
                "200": {
                    "description": "analytics.js settings.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                "404": {
                    "description": "`not_found`: no enabled source has this write key.",
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}
                    },
                },
            },
        }
    }
    return paths


# --- Personalised content (/v1/decide) ------------------------------------------------------

_PLACEMENT_KEY = {"type": "string", "maxLength": 64, "example": "home_hero"}
_PLACEMENT_LIST = {
    "type": "string",
    "pattern": rf"^[^,]{{0,64}}(,[^,]{{0,64}}){{0,{MAX_PLACEMENTS - 1}}}$",
    "example": "home_hero,cart_banner",
}
# An identifier as profiles.identifiers.id_normalize reads it: text (or, in a body, a number)
# with something besides spaces, at most MAX_VALUE_LENGTH characters.
_VISITOR_ID = {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": NOT_BLANK}
_ONE_VISITOR = "Exactly one of `anonymousId` and `userId` (empty or null counts as absent)."


def _decide_paths(components: dict[str, Any]) -> dict[str, Any]:
    schemas = components.setdefault("schemas", {})
    schemas["Decision"] = {
        "type": "object",
        "required": ["placement", "experience", "variant", "content", "decision_id"],
        "properties": {
            "placement": {"type": "string"},
            "experience": {
                "type": "integer",
                "nullable": True,
                "description": "The experience that answered; null: the default content.",
            },
            "variant": {
                "type": "string",
                "nullable": True,
                "description": "null: the default content or the experience's holdout.",
            },
            "content": {
                "type": "object",
                "description": "Fits the placement's content schema (Liquid rendered).",
            },
            "decision_id": {
                "type": "string",
                "format": "uuid",
                "nullable": True,
                "description": "Send it with `Experience Viewed` / `Experience Clicked`; null "
                "when nothing was recorded (default content, or a visitor without a profile "
                "answered by page context alone).",
            },
        },
    }
    schemas["Decisions"] = {
        "type": "object",
        "required": ["decisions"],
        "properties": {
            "decisions": {
                "type": "array",
                "items": {"$ref": "#/components/schemas/Decision"},
                "description": "One per placement asked, in the order asked.",
            }
        },
    }
    page = {name: {"type": "string", "maxLength": MAX_PAGE_VALUE} for name in PAGE_FIELDS}
    errors = {
        **INGEST_ERRORS,
        "404": {
            "description": "`unknown_placement`: no placement has a key asked for.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/IngestError"}}
            },
        },
    }
    errors["400"] = {
        **errors["400"],
        "description": "`malformed_json` or `invalid_request` naming the parameter at fault. "
        + _ONE_VISITOR,
    }
    description = (
        "What a website or app shows this visitor in its placements: the first live "
        "experience (by priority) whose page conditions and audience hold, the person's "
        "sticky arm in it, else the default content. A visitor without a profile is answered "
        "by experiences that target page context alone (nothing is recorded); a person "
        "without `personalization` consent gets the default content. Authorised by a "
        "source's write key; CORS as the ingestion routes; never cached by shared caches."
    )
    visitor_parameters = [
        {
            "name": name,
            "in": "query",
            "required": False,
            "allowEmptyValue": True,
            "description": _ONE_VISITOR,
            "schema": _VISITOR_ID,
        }
        for name in ("anonymousId", "userId")
    ]
    return {
        "/v1/decide": {
            "get": {
                "operationId": "decide",
                "tags": ["personalisation"],
                "summary": "The content for one placement (or several) for a visitor",
                "description": description
                + " Give `placement` (one key: answers one Decision) or `placements` (keys "
                "separated by commas: answers Decisions), not both.",
                "security": [{"writeKey": []}],
                "parameters": [
                    {
                        "name": "placement",
                        "in": "query",
                        "required": False,
                        "description": "One placement key (or give `placements`).",
                        "schema": _PLACEMENT_KEY,
                    },
                    {
                        "name": "placements",
                        "in": "query",
                        "required": False,
                        "description": f"1 to {MAX_PLACEMENTS} placement keys separated by "
                        "commas (or give `placement`).",
                        "schema": _PLACEMENT_LIST,
                    },
                    *visitor_parameters,
                    {
                        "name": "writeKey",
                        "in": "query",
                        "required": False,
                        "description": "The write key, when not sent as HTTP Basic user name.",
                        "schema": {"type": "string"},
                    },
                    *(
                        {
                            "name": name,
                            "in": "query",
                            "required": False,
                            "description": "The page's context, for page conditions.",
                            "schema": schema,
                        }
                        for name, schema in page.items()
                    ),
                ],
                "responses": {
                    "200": {
                        "description": "A Decision (`placement`), or Decisions (`placements`).",
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {"$ref": "#/components/schemas/Decision"},
                                        {"$ref": "#/components/schemas/Decisions"},
                                    ]
                                }
                            }
                        },
                    },
                    **errors,
                },
            },
            "post": {
                "operationId": "decide_batch",
                "tags": ["personalisation"],
                "summary": "The content for several placements for a visitor",
                "description": description,
                "security": [{"writeKey": []}],
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "additionalProperties": False,
                                "required": ["placements"],
                                "description": _ONE_VISITOR,
                                "properties": {
                                    "placements": {
                                        "description": "Placement keys: a list, or one string "
                                        "of keys separated by commas.",
                                        "oneOf": [
                                            {
                                                "type": "array",
                                                "minItems": 1,
                                                "maxItems": MAX_PLACEMENTS,
                                                "items": _PLACEMENT_KEY,
                                            },
                                            _PLACEMENT_LIST,
                                        ],
                                    },
                                    "anonymousId": {
                                        "anyOf": [_VISITOR_ID, {"type": "number"}],
                                        "nullable": True,
                                    },
                                    "userId": {
                                        "anyOf": [_VISITOR_ID, {"type": "number"}],
                                        "nullable": True,
                                    },
                                    "writeKey": {"type": "string", "nullable": True},
                                    "page": {
                                        "type": "object",
                                        "additionalProperties": False,
                                        "properties": page,
                                    },
                                },
                            }
                        }
                    },
                },
                "responses": {
                    "200": {
                        "description": "One Decision per placement, in the order asked.",
                        "content": {
                            "application/json": {
                                "schema": {"$ref": "#/components/schemas/Decisions"}
                            }
                        },
                    },
                    **errors,
                },
            },
        }
    }


# --- Links: what a create answers leads to its object's routes --------------------------------

_PATH_PARAMETER = re.compile(r"\{(\w+)\}")


def _resolved(schema: dict[str, Any], components: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return components.get("schemas", {}).get(schema["$ref"].rsplit("/", 1)[-1], {})
    return schema


def _key_pointer(response: dict[str, Any], components: dict[str, Any]) -> str | None:
    """Where the created object's key is in the answer: `id` (catalog items: `external_id`),
    at the top or in the one object it wraps (a channel with its secret)."""
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    properties = _resolved(schema, components).get("properties", {})
    for key in ("id", "external_id"):
        if key in properties:
            return f"/{key}"
    for name, value in properties.items():
        if "id" in _resolved(value, components).get("properties", {}):
            return f"/{name}/id"
    return None


def _links_add(paths: dict[str, Any], components: dict[str, Any]) -> None:
    """OpenAPI links from each create (`POST /x/`, answering an object with its key) to the
    operations on that object (`/x/{x_id}/...`), the key passed from the answer's body: clients
    and schemathesis' stateful tests follow them (create, then read, change, delete it)."""
    for path, operations in paths.items():
        create = operations.get("post")
        if create is None or "{" in path:
            continue
        for status, response in create.get("responses", {}).items():
            if not status.startswith("2"):
                continue
            pointer = _key_pointer(response, components)
            if pointer is None:
                continue
            links = {}
            for target_path, target_operations in paths.items():
                names = _PATH_PARAMETER.findall(target_path)
                if len(names) != 1 or not target_path.startswith(path + "{"):
                    continue
                for method, target in target_operations.items():
                    if method in ("get", "post", "put", "patch", "delete"):
                        links[target["operationId"]] = {
                            "operationId": target["operationId"],
                            "parameters": {names[0]: f"$response.body#{pointer}"},
                        }
            if links:
                response["links"] = links


def api_conventions(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict:
    """drf-spectacular postprocessing hook: see the module docstring."""
    for operations in result.get("paths", {}).values():
        for method, operation in operations.items():
            if method in ("get", "post", "put", "patch", "delete"):
                _api_operation(operation)
    _links_add(result.get("paths", {}), result.setdefault("components", {}))
    components = result.setdefault("components", {})
    components.setdefault("schemas", {}).update(
        {
            **definition_components(),
            **audience_components(),
            **campaign_definition_components(),
        }
    )
    result["paths"] = {**_ingest_paths(components), **_decide_paths(components), **result["paths"]}
    return result
