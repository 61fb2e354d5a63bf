"""Segment REST API (routes in cdp/api_urls.py).

An invalid definition answers 400 `{"definition": [{"pointer": "/all/1/trait", "message": ...}]}`
where `pointer` is the JSON pointer of the offending node inside the definition.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    extend_schema,
    extend_schema_field,
    extend_schema_serializer,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_fields import (
    JsonStringField,
    OutboundUrlOrBlankField,
    openapi_30,
    query_flag,
)
from access.auth import ResourcePermission, client_ip
from access.csv_export import csv_response
from access.pagination import KeysetPagination
from access.pii import PiiTraitsField, pii_for, pii_pseudonym
from access.roles import ADMIN, COMPLIANCE, MARKETER
from access.services import audit_record
from profiles.api import ProfileOutputSerializer
from profiles.models import Profile
from segments import conditions, selectors, services
from segments.models import Segment


class SegmentsResource:
    """`segments:read` / `segments:write` keys; marketers and admins build, compliance reads."""

    resource = "segments"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (MARKETER, ADMIN)
    permission_classes = [ResourcePermission]


DEFINITION_REF = "#/components/schemas/SegmentDefinition"


def _components_ref(schema: Any, name: str) -> Any:
    """`schema` with its `#/$defs/<x>` references pointing at the OpenAPI components `name<X>`."""
    if isinstance(schema, list):
        return [_components_ref(item, name) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/$defs/"):
        part = schema["$ref"].removeprefix("#/$defs/")
        return {"$ref": f"#/components/schemas/{name}{part.capitalize()}"}
    return {key: _components_ref(value, name) for key, value in schema.items()}


def definition_components(
    name: str = "SegmentDefinition", kinds: Collection[str] = tuple(conditions.KINDS)
) -> dict[str, Any]:
    """The condition language's JSON Schema (conditions.SCHEMA) as OpenAPI 3.0 components
    `name...`, derived from it: each of its `$defs`, and a node as one of an object per kind
    (the schema's `if`/`then` per kind key, which OpenAPI 3.0 does not have, says the same:
    one kind key, with the keys of that kind and no other). `kinds`: the kinds a use allows."""
    node = {
        "type": "object",
        "description": "A condition: exactly one kind key, with that kind's keys.",
        "oneOf": [
            {
                **kind_schema,
                "required": list(dict.fromkeys([kind, *kind_schema.get("required", [])])),
                "additionalProperties": False,
            }
            for kind, kind_schema in conditions.KINDS.items()
            if kind in kinds
        ],
    }
    defs = {**conditions.SCHEMA["$defs"], "node": node}
    components = {
        f"{name}{part.capitalize()}": openapi_30(_components_ref(schema, name))
        for part, schema in defs.items()
    }
    components[name] = {
        "$ref": f"#/components/schemas/{name}Node",
        "description": "A condition tree; the JSON Schema: GET /api/v1/segments/schema/.",
    }
    return components


def definition_or_400(definition: Any, segment: Segment | None = None) -> None:
    try:
        services.segment_definition_check(definition=definition, segment=segment)
    except conditions.InvalidDefinition as error:
        raise ValidationError({"definition": [e.as_dict() for e in error.errors]}) from None


@extend_schema_field({"$ref": DEFINITION_REF})
class DefinitionField(serializers.JSONField):
    """A segment definition (checked by definition_or_400)."""


class SegmentOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    description = serializers.CharField()
    definition = serializers.JSONField()
    definition_version = serializers.IntegerField()
    description_in_words = serializers.SerializerMethodField()
    status = serializers.CharField()
    size = serializers.IntegerField()
    refreshed_at = serializers.DateTimeField(allow_null=True)
    webhook_url = serializers.CharField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def get_description_in_words(self, segment: Segment) -> str:
        return conditions.describe(segment.definition)


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "Customers on the pro plan",
            value={
                "name": "Pro customers",
                "definition": {"all": [{"trait": "plan", "op": "eq", "value": "pro"}]},
            },
            request_only=True,
        )
    ]
)
class SegmentInputSerializer(serializers.Serializer):
    name = JsonStringField(max_length=200)
    description = JsonStringField(required=False, allow_blank=True, max_length=5000)
    definition = DefinitionField()
    webhook_url = OutboundUrlOrBlankField(required=False)


class SegmentListApi(SegmentsResource, APIView):
    @extend_schema(
        tags=["segments"],
        parameters=[OpenApiParameter("archived", bool, description="Include archived segments.")],
        extensions={"x-empty-is-absent": ["archived"]},
        responses={200: SegmentOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        segments = selectors.segment_list(include_archived=query_flag(request, "archived"))
        return Response({"results": SegmentOutputSerializer(segments, many=True).data})

    @extend_schema(
        tags=["segments"], request=SegmentInputSerializer, responses={201: SegmentOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = SegmentInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        definition_or_400(data.validated_data["definition"])
        segment = services.segment_create(
            name=data.validated_data["name"],
            definition=data.validated_data["definition"],
            description=data.validated_data.get("description", ""),
            webhook_url=data.validated_data.get("webhook_url", ""),
            actor=request.user if getattr(request.user, "pk", None) else None,
        )
        segment.refresh_from_db()
        body = dict(SegmentOutputSerializer(segment).data)
        if segment.webhook_url:
            # Shown this once; POST .../webhook-secret/ rotates it.
            body["webhook_secret"] = services.webhook_secret(segment=segment)
        return Response(body, status=status.HTTP_201_CREATED)


def _segment_or_404(segment_id: int) -> Segment:
    segment = selectors.segment_get(segment_id=segment_id)
    if segment is None:
        raise NotFound(f"No segment with id {segment_id}.")
    return segment


class SegmentDetailApi(SegmentsResource, APIView):
    class UpdateSerializer(serializers.Serializer):
        name = JsonStringField(max_length=200, required=False)
        description = JsonStringField(required=False, allow_blank=True, max_length=5000)
        definition = DefinitionField(required=False)
        webhook_url = OutboundUrlOrBlankField(required=False)

    @extend_schema(tags=["segments"], responses={200: SegmentOutputSerializer})
    def get(self, request: Request, segment_id: int) -> Response:
        return Response(SegmentOutputSerializer(_segment_or_404(segment_id)).data)

    @extend_schema(
        tags=["segments"], request=UpdateSerializer, responses={200: SegmentOutputSerializer}
    )
    def patch(self, request: Request, segment_id: int) -> Response:
        segment = _segment_or_404(segment_id)
        data = self.UpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "definition" in data.validated_data:
            definition_or_400(data.validated_data["definition"], segment)
        segment = services.segment_update(
            segment=segment, actor=request.user, **data.validated_data
        )
        return Response(SegmentOutputSerializer(segment).data)

    @extend_schema(tags=["segments"], responses={200: SegmentOutputSerializer})
    def delete(self, request: Request, segment_id: int) -> Response:
        """Archives (definitions and history are kept)."""
        segment = services.segment_archive(segment=_segment_or_404(segment_id), actor=request.user)
        return Response(SegmentOutputSerializer(segment).data)


class SegmentArchiveApi(SegmentsResource, APIView):
    @extend_schema(tags=["segments"], request=None, responses={200: SegmentOutputSerializer})
    def post(self, request: Request, segment_id: int) -> Response:
        segment = services.segment_archive(segment=_segment_or_404(segment_id), actor=request.user)
        return Response(SegmentOutputSerializer(segment).data)


class SegmentWebhookSecretApi(SegmentsResource, APIView):
    """A new secret for this segment's webhook deliveries (Standard Webhooks, see the README),
    shown this once; the previous one keeps signing beside it for a day, so a receiver can
    switch without refusing a delivery. POST only, so only writers (marketers, admins,
    `segments:write` keys) get one. Every rotation is audited."""

    @extend_schema(
        tags=["segments"],
        request=None,
        responses={
            200: inline_serializer(
                "SegmentWebhookSecret",
                {
                    "secret": serializers.CharField(),
                    "previous_valid_until": serializers.DateTimeField(),
                },
            )
        },
    )
    def post(self, request: Request, segment_id: int) -> Response:
        segment = _segment_or_404(segment_id)
        secret = services.webhook_secret_rotate(segment=segment)
        audit_record(
            actor=request.user,
            action="webhook_secret",
            resource="segment",
            resource_id=segment.pk,
            ip=client_ip(request),
            details={"rotated": True},
        )
        return Response(
            {"secret": secret, "previous_valid_until": segment.previous_webhook_secret_until}
        )


class SegmentRefreshApi(SegmentsResource, APIView):
    @extend_schema(
        tags=["segments"],
        request=None,
        responses={
            200: inline_serializer(
                "SegmentRefreshResult",
                {
                    "size": serializers.IntegerField(),
                    "entered": serializers.IntegerField(),
                    "exited": serializers.IntegerField(),
                },
            )
        },
    )
    def post(self, request: Request, segment_id: int) -> Response:
        result = services.segment_refresh(segment=_segment_or_404(segment_id))
        return Response(
            {"size": result.size, "entered": len(result.entered), "exited": len(result.exited)}
        )


class PreviewProfileSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    traits = PiiTraitsField()
    last_seen = serializers.DateTimeField(allow_null=True)


class SegmentPreviewApi(SegmentsResource, APIView):
    class InputSerializer(serializers.Serializer):
        definition = DefinitionField()
        sample_size = serializers.IntegerField(
            required=False, min_value=0, max_value=50, default=10
        )

    @extend_schema(
        tags=["segments"],
        request=InputSerializer,
        responses={
            200: inline_serializer(
                "SegmentPreview",
                {
                    "count": serializers.IntegerField(),
                    "sample": PreviewProfileSerializer(many=True),
                },
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        definition_or_400(data.validated_data["definition"])
        preview = selectors.definition_preview(
            data.validated_data["definition"], sample_size=data.validated_data["sample_size"]
        )
        return Response(
            {
                "count": preview.count,
                "sample": PreviewProfileSerializer(
                    preview.sample, many=True, context={"request": request}
                ).data,
            }
        )


class SegmentSchemaApi(SegmentsResource, APIView):
    @extend_schema(tags=["segments"], responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(conditions.SCHEMA)


class SegmentMembersApi(SegmentsResource, APIView):
    pagination_class = KeysetPagination

    @extend_schema(tags=["segments"], responses={200: ProfileOutputSerializer(many=True)})
    def get(self, request: Request, segment_id: int) -> Response:
        segment = _segment_or_404(segment_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.segment_members(segment=segment), request, view=self
        )
        return paginator.get_paginated_response(
            ProfileOutputSerializer(page, many=True, context={"request": request}).data
        )


class SegmentExportApi(SegmentsResource, APIView):
    """CSV of the members. `?pseudonymised=true` replaces ids and identifiers by keyed hashes;
    callers who may not see personal data (access.pii: staff outside PII_VISIBLE_ROLES, keys
    without `pii:read`) always get the pseudonymised file. Every export is audited."""

    COLUMNS = (
        "profile_id",
        "email",
        "phone",
        "user_id",
        "first_seen",
        "last_seen",
        "order_count",
        "revenue",
    )

    @extend_schema(
        tags=["segments"],
        parameters=[OpenApiParameter("pseudonymised", bool)],
        extensions={"x-empty-is-absent": ["pseudonymised"]},
        responses={(200, "text/csv"): OpenApiTypes.STR},
    )
    def get(self, request: Request, segment_id: int) -> StreamingHttpResponse:
        segment = _segment_or_404(segment_id)
        pseudo = query_flag(request, "pseudonymised") or not pii_for(request).visible
        audit_record(
            actor=request.user,
            action="export",
            resource="segment",
            resource_id=segment.pk,
            ip=client_ip(request),
            details={"pseudonymised": pseudo},
        )

        def rows() -> Any:
            members = selectors.segment_members(segment=segment).order_by("id")
            for profile in members.iterator(chunk_size=1000):
                ids: dict[str, str] = {}
                for identity in profile.identities.all():
                    ids.setdefault(identity.kind, identity.value)
                values = [
                    profile.pk,
                    ids.get("email", ""),
                    ids.get("phone", ""),
                    ids.get("user_id", ""),
                ]
                if pseudo:
                    values = [pii_pseudonym(v) if v != "" else "" for v in values]
                yield [
                    *values,
                    profile.first_seen.isoformat() if profile.first_seen else "",
                    profile.last_seen.isoformat() if profile.last_seen else "",
                    profile.order_count,
                    profile.revenue,
                ]

        suffix = "-pseudonymised" if pseudo else ""
        return csv_response(
            filename=f"segment-{segment.pk}{suffix}.csv", header=self.COLUMNS, rows=rows()
        )


class SegmentExplainApi(SegmentsResource, APIView):
    @extend_schema(tags=["segments"], responses={200: dict})
    def get(self, request: Request, segment_id: int, profile_id: int) -> Response:
        segment = _segment_or_404(segment_id)
        profile = Profile.objects.filter(pk=profile_id).first()
        if profile is None:
            raise NotFound(f"No profile with id {profile_id}.")
        explained = selectors.segment_explain(segment=segment, profile=profile, viewer=request)
        return Response(
            {
                "member": explained["member"],
                "matches_now": explained["matches_now"],
                "explanation": explained["tree"],
            }
        )


class ProfileSegmentsApi(SegmentsResource, APIView):
    @extend_schema(
        tags=["segments"],
        responses={
            200: inline_serializer(
                "ProfileSegments",
                {
                    "results": inline_serializer(
                        "ProfileSegment",
                        {
                            "id": serializers.IntegerField(),
                            "name": serializers.CharField(),
                            "entered_at": serializers.DateTimeField(),
                        },
                        many=True,
                    )
                },
            )
        },
    )
    def get(self, request: Request, profile_id: int) -> Response:
        profile = Profile.objects.filter(pk=profile_id).first()
        if profile is None:
            raise NotFound(f"No profile with id {profile_id}.")
        rows = selectors.profile_segments(profile=profile)
        return Response(
            {
                "results": [
                    {"id": m.segment_id, "name": m.segment.name, "entered_at": m.entered_at}
                    for m in rows
                ]
            }
        )
