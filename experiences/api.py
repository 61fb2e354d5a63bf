"""Management REST API of placements and experiences (routes in cdp/api_urls.py).

Invalid input answers 400 by field: `{"variants": ["/0/content/title: 'title' is a required
property"]}` (JSON pointers inside the field). Decisions themselves are served to browsers by
`/v1/decide` (experiences.decide_views), not here.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    extend_schema,
    extend_schema_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_fields import (
    JsonObjectField,
    JsonSlugField,
    JsonStringField,
    json_document_field,
    openapi_30,
)
from access.auth import ResourcePermission
from access.roles import ADMIN, COMPLIANCE, MARKETER
from experiences import selectors, services
from experiences.definition import (
    AUDIENCE_KINDS,
    PAGE_OPS,
    PAGE_SCHEMA,
    VARIANTS_SCHEMA,
    InvalidExperience,
)
from experiences.models import Experience, Placement
from segments.api import definition_components

TAGS = ["experiences"]


class ExperiencesResource:
    """`experiences:read` / `experiences:write` keys; marketers and admins write, compliance
    reads."""

    resource = "experiences"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (MARKETER, ADMIN)
    permission_classes = [ResourcePermission]


def _actor(request: Request) -> Any:
    return request.user if getattr(request.user, "pk", None) else None


def _valid(serializer: serializers.Serializer) -> dict[str, Any]:
    if not isinstance(serializer.initial_data, dict):
        raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


class PlacementOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key = serializers.CharField()
    name = serializers.CharField()
    description = serializers.CharField()
    content_schema = serializers.JSONField()
    default_content = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


@extend_schema_serializer(
    examples=[
        OpenApiExample(
            "A hero banner",
            value={
                "key": "home_hero",
                "name": "Home hero",
                "content_schema": {
                    "type": "object",
                    "properties": {"title": {"type": "string"}},
                    "required": ["title"],
                },
                "default_content": {"title": "Welcome"},
            },
            request_only=True,
        )
    ]
)
class PlacementInputSerializer(serializers.Serializer):
    key = JsonSlugField(max_length=64, help_text="e.g. home_hero, cart_banner.")
    name = JsonStringField(max_length=200)
    description = JsonStringField(required=False, allow_blank=True, max_length=5000)
    content_schema = JsonObjectField(
        required=False, help_text="A JSON Schema (2020-12) every content must fit."
    )
    default_content = JsonObjectField(
        required=False, help_text="What everyone no experience targets sees."
    )


KEY_TAKEN = OpenApiResponse(
    OpenApiTypes.OBJECT, description='Another placement has this key: `{"key": [...]}`.'
)


class PlacementListApi(ExperiencesResource, APIView):
    @extend_schema(tags=TAGS, responses={200: PlacementOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = selectors.placement_list()
        return Response({"results": PlacementOutputSerializer(rows, many=True).data})

    @extend_schema(
        tags=TAGS,
        request=PlacementInputSerializer,
        responses={
            201: PlacementOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT),
            409: KEY_TAKEN,
        },
    )
    def post(self, request: Request) -> Response:
        fields = _valid(PlacementInputSerializer(data=request.data))
        try:
            placement = services.placement_create(fields=fields, actor=_actor(request))
        except services.PlacementKeyTakenError as taken:
            return Response(taken.errors, status=status.HTTP_409_CONFLICT)
        except InvalidExperience as invalid:
            raise ValidationError(invalid.errors) from None
        return Response(PlacementOutputSerializer(placement).data, status=status.HTTP_201_CREATED)


def _placement_or_404(placement_id: int) -> Placement:
    placement = selectors.placement_get_by_id(placement_id=placement_id)
    if placement is None:
        raise NotFound(f"No placement with id {placement_id}.")
    return placement


class PlacementDetailApi(ExperiencesResource, APIView):
    @extend_schema(tags=TAGS, responses={200: PlacementOutputSerializer})
    def get(self, request: Request, placement_id: int) -> Response:
        return Response(PlacementOutputSerializer(_placement_or_404(placement_id)).data)

    @extend_schema(
        tags=TAGS,
        request=PlacementInputSerializer(partial=True),
        responses={
            200: PlacementOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT),
            409: KEY_TAKEN,
        },
    )
    def patch(self, request: Request, placement_id: int) -> Response:
        placement = _placement_or_404(placement_id)
        fields = _valid(PlacementInputSerializer(data=request.data, partial=True))
        try:
            placement = services.placement_update(
                placement=placement, fields=fields, actor=_actor(request)
            )
        except services.PlacementKeyTakenError as taken:
            return Response(taken.errors, status=status.HTTP_409_CONFLICT)
        except InvalidExperience as invalid:
            raise ValidationError(invalid.errors) from None
        return Response(PlacementOutputSerializer(placement).data)


class ExperienceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    placement = serializers.CharField(source="placement.key")
    name = serializers.CharField()
    status = serializers.CharField()
    audience = serializers.JSONField()
    page = serializers.JSONField()
    variants = serializers.JSONField()
    allocation = serializers.CharField()
    goal_event = serializers.CharField()
    priority = serializers.IntegerField()
    starts_at = serializers.DateTimeField(allow_null=True)
    ends_at = serializers.DateTimeField(allow_null=True)
    holdout_percent = serializers.FloatField()
    bandit_shares = serializers.JSONField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


AUDIENCE = "ExperienceAudience"


def audience_components() -> dict[str, Any]:
    """An audience's OpenAPI components: the segment language's, with the kinds an audience
    takes (experiences.definition.AUDIENCE_KINDS)."""
    return definition_components(AUDIENCE, AUDIENCE_KINDS)


def _page_documented() -> dict[str, Any]:
    """PAGE_SCHEMA with what experience_problems checks beside it: an operator's value is a
    string, a list of strings (`in`, `not_in`) or absent (`exists`, `not_exists`)."""
    item = PAGE_SCHEMA["items"]
    text, texts = item["properties"]["value"]["oneOf"]
    forms = {("exists", "not_exists"): None, ("in", "not_in"): texts}
    others = tuple(op for op in PAGE_OPS if not any(op in ops for ops in forms))
    return openapi_30(
        {
            **PAGE_SCHEMA,
            "items": {
                "oneOf": [
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["field", "op", *(["value"] if value else [])],
                        "properties": {
                            "field": item["properties"]["field"],
                            "op": {"enum": list(ops)},
                            **({"value": value} if value else {}),
                        },
                    }
                    for ops, value in {**forms, others: text}.items()
                ]
            },
        }
    )


class ExperienceInputSerializer(serializers.Serializer):
    placement = serializers.SlugField(max_length=64, help_text="The placement's key.")
    name = JsonStringField(max_length=200)
    status = serializers.ChoiceField(choices=Experience.Status.choices, required=False)
    audience = json_document_field(
        schema={"allOf": [{"$ref": f"#/components/schemas/{AUDIENCE}"}], "nullable": True},
        component_name=None,
        required=False,
        allow_null=True,
        help_text="A segment-language condition on traits, computed features and segment "
        "membership (null: everyone).",
    )
    page = json_document_field(
        schema=_page_documented(),
        component_name="ExperiencePage",
        required=False,
        help_text='[{"field": "path", "op": "starts_with", "value": "/shoes"}]',
    )
    variants = json_document_field(
        schema=VARIANTS_SCHEMA,
        component_name="ExperienceVariants",
        help_text="Each variant's content fits the placement's content schema.",
    )
    allocation = serializers.ChoiceField(choices=Experience.Allocation.choices, required=False)
    goal_event = JsonStringField(required=False, allow_blank=True, max_length=255)
    priority = serializers.IntegerField(
        required=False, min_value=-1_000_000, max_value=1_000_000, help_text="Lower first."
    )
    starts_at = serializers.DateTimeField(required=False, allow_null=True)
    ends_at = serializers.DateTimeField(required=False, allow_null=True)
    holdout_percent = serializers.FloatField(required=False, min_value=0, max_value=99.99)

    def validate_placement(self, key: str) -> Placement:
        placement = selectors.placement_get(key=key)
        if placement is None:
            raise serializers.ValidationError(f"No placement has the key {key!r}.")
        return placement


class ExperienceListApi(ExperiencesResource, APIView):
    @extend_schema(tags=TAGS, responses={200: ExperienceOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        rows = selectors.experience_list()
        return Response({"results": ExperienceOutputSerializer(rows, many=True).data})

    @extend_schema(
        tags=TAGS,
        request=ExperienceInputSerializer,
        responses={201: ExperienceOutputSerializer, 400: OpenApiResponse(OpenApiTypes.OBJECT)},
    )
    def post(self, request: Request) -> Response:
        fields = _valid(ExperienceInputSerializer(data=request.data))
        try:
            experience = services.experience_create(fields=fields, actor=_actor(request))
        except InvalidExperience as invalid:
            raise ValidationError(invalid.errors) from None
        return Response(ExperienceOutputSerializer(experience).data, status=status.HTTP_201_CREATED)


def _experience_or_404(experience_id: int) -> Experience:
    experience = selectors.experience_get(experience_id=experience_id)
    if experience is None:
        raise NotFound(f"No experience with id {experience_id}.")
    return experience


class ExperienceDetailApi(ExperiencesResource, APIView):
    @extend_schema(tags=TAGS, responses={200: ExperienceOutputSerializer})
    def get(self, request: Request, experience_id: int) -> Response:
        return Response(ExperienceOutputSerializer(_experience_or_404(experience_id)).data)

    @extend_schema(
        tags=TAGS,
        request=ExperienceInputSerializer(partial=True),
        responses={200: ExperienceOutputSerializer, 400: OpenApiResponse(OpenApiTypes.OBJECT)},
    )
    def patch(self, request: Request, experience_id: int) -> Response:
        experience = _experience_or_404(experience_id)
        fields = _valid(ExperienceInputSerializer(data=request.data, partial=True))
        try:
            experience = services.experience_update(
                experience=experience, fields=fields, actor=_actor(request)
            )
        except InvalidExperience as invalid:
            raise ValidationError(invalid.errors) from None
        return Response(ExperienceOutputSerializer(experience).data)


class ExperienceResultsApi(ExperiencesResource, APIView):
    @extend_schema(
        tags=TAGS,
        summary="Impressions, clicks and conversions per variant, with the test",
        description=(
            "Per arm (each variant, and the holdout): people assigned, impressions (Experience "
            "Viewed events), clicks (Experience Clicked), conversions (the goal event after "
            "the decision, or a click without a goal), the rate's 95% confidence sequence, "
            "lift and always-valid p-value (mSPRT) against the baseline, probability best."
        ),
        responses={200: OpenApiResponse(OpenApiTypes.OBJECT)},
    )
    def get(self, request: Request, experience_id: int) -> Response:
        experience = _experience_or_404(experience_id)
        return Response(selectors.experience_results(experience=experience))
