"""Profile REST API: `/api/v1/profiles/...` (routes in cdp/api_urls.py).

CMS and CRM systems build on these shapes; keep them stable. Conventions:
- Lists answer `{"results": [...], "next": url-or-null}` (keyset cursor, stable under inserts).
- Trait filters are query parameters `trait.<key>=<value>`, dotted for nested traits
  (`?trait.address.city=Berlin`). Several filters combine with AND.
- A profile that identity resolution merged away is not listed; asking for it by id answers a
  permanent redirect to the surviving profile (301 for GET, 308 for PATCH so the method is
  kept), with a body `{"detail": ..., "merged_into": <id>}`.
"""

import json
from typing import Any

from django.conf import settings
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
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

from access.api_fields import NOT_BLANK, WHITE_SPACE
from access.auth import ResourcePermission
from access.pagination import KeysetPagination
from access.parsers import JSONParser
from access.pii import PiiDocumentField, PiiTraitsField, pii_for
from access.roles import ADMIN, COMPLIANCE, MARKETER
from profiles import selectors, services
from profiles.extensions import computed_extras
from profiles.identifiers import (
    MAX_PHONE_TEXT,
    MAX_VALUE_LENGTH,
    InvalidIdentifierError,
)
from profiles.models import Profile

TRAIT_PARAM_PREFIX = "trait."
# What profiles.identifiers.email_normalize takes: one address with something before its last
# "@" and something after, no white space inside (around it, trimmed).
EMAIL_PATTERN = rf"^{WHITE_SPACE}*{NOT_BLANK}+@[^\s\x1c-\x1f\x85@]+{WHITE_SPACE}*\Z"
# An identifier in a JSON body, as profiles.identifiers reads each kind (ids may be numbers,
# phones whole numbers; a phone that is no valid number is refused: no pattern says which).
_ID_TEXT = {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": NOT_BLANK}
IDENTIFIER_SCHEMAS: dict[str, dict[str, Any]] = {
    "email": {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": EMAIL_PATTERN},
    "user_id": {"anyOf": [_ID_TEXT, {"type": "number"}]},
    "anonymous_id": {"anyOf": [_ID_TEXT, {"type": "number"}]},
    "phone": {
        "anyOf": [
            {"type": "string", "maxLength": MAX_PHONE_TEXT, "pattern": NOT_BLANK},
            {"type": "integer"},
        ]
    },
}
MAX_TRAIT_KEY_LENGTH = 255


class ProfilesResource:
    """Who may use the profile API: `profiles:read` / `profiles:write` keys; staff roles."""

    resource = "profiles"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (MARKETER, ADMIN)
    permission_classes = [ResourcePermission]


class IdentityOutputSerializer(serializers.Serializer):
    kind = serializers.CharField()
    value = serializers.CharField(help_text="Masked unless the caller may see personal data.")

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["value"] = pii_for(self.context.get("request")).value(data["value"], kind=data["kind"])
        return data


class PropensityOutputSerializer(serializers.Serializer):
    purchase_30d = serializers.FloatField(
        allow_null=True, help_text="Probability of an order in the next 30 days."
    )
    churn = serializers.FloatField(
        allow_null=True, help_text="Probability of no activity in the next 30 days."
    )


class ClusterOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


# The keys higher apps add to `computed` (profiles.extensions), when they have nothing to add.
COMPUTED_EXTRA_DEFAULTS: dict[str, Any] = {
    "propensity": {"purchase_30d": None, "churn": None},
    "predicted_lifetime_value": None,
    "cluster": None,
}


class ComputedOutputSerializer(serializers.Serializer):
    event_count = serializers.IntegerField()
    session_count = serializers.IntegerField()
    order_count = serializers.IntegerField()
    revenue = serializers.FloatField(help_text="In the workspace currency (WORKSPACE_CURRENCY).")
    revenue_unconverted = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Orders in currencies without a conversion rate, per currency: in no other "
        "figure until an admin sets a rate.",
    )
    first_order_at = serializers.DateTimeField(allow_null=True)
    last_order_at = serializers.DateTimeField(allow_null=True)
    recency_days = serializers.IntegerField(
        allow_null=True, help_text="Whole days since the last order; null without orders."
    )
    frequency = serializers.IntegerField(help_text="Number of orders.")
    monetary = serializers.FloatField(
        help_text="Total revenue of Order Completed events (RFM monetary, as in segments)."
    )
    average_order_value = serializers.FloatField(
        allow_null=True, help_text="Revenue per order; null without orders."
    )
    lifetime_value = serializers.FloatField(help_text="Revenue to date.")
    propensity = PropensityOutputSerializer(
        help_text="Scores of the serving propensity models (models page); null where no model "
        "serves or the profile has no score."
    )
    predicted_lifetime_value = serializers.FloatField(
        allow_null=True,
        help_text="Expected orders in the next 12 months (BG/NBD) times the average order value.",
    )
    cluster = ClusterOutputSerializer(allow_null=True)


class ProfileListOutputSerializer(serializers.ListSerializer):
    """Many profiles at once: the higher apps' computed values (profiles.extensions) are read
    for the whole list in one go, so a page of profiles costs a fixed number of queries
    wherever it is served (profiles list, segment members...)."""

    def to_representation(self, data: Any) -> list[Any]:
        profiles = list(data.all() if hasattr(data, "all") else data)
        self._context = {"computed_extras": computed_extras(profiles), **self._context}
        return super().to_representation(profiles)


class ProfileOutputSerializer(serializers.Serializer):
    class Meta:
        list_serializer_class = ProfileListOutputSerializer

    id = serializers.IntegerField()
    traits = PiiTraitsField()
    computed = serializers.SerializerMethodField()
    context = PiiDocumentField()
    identities = IdentityOutputSerializer(many=True)
    first_seen = serializers.DateTimeField(allow_null=True)
    last_seen = serializers.DateTimeField(allow_null=True)

    @extend_schema_field(ComputedOutputSerializer)
    def get_computed(self, profile: Profile) -> dict[str, Any]:
        features = selectors.profile_computed_features(profile, now=self.context.get("now"))
        extras = self.context.get("computed_extras")
        if extras is None:
            extras = computed_extras([profile])
        return ComputedOutputSerializer(
            {**features, **COMPUTED_EXTRA_DEFAULTS, **extras.get(profile.pk, {})}
        ).data


class SourceRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()


class EventOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    type = serializers.CharField()
    event = serializers.CharField(help_text="Track event name, or page/screen name.")
    timestamp = serializers.DateTimeField()
    received_at = serializers.DateTimeField()
    properties = PiiDocumentField()
    traits = PiiTraitsField()
    context = PiiDocumentField()
    message_id = serializers.CharField()
    source = SourceRefSerializer()


def _merged_redirect(request: Request, profile: Profile, route: str) -> Response:
    survivor = selectors.profile_survivor(profile=profile)
    url = request.build_absolute_uri(reverse(route, args=[survivor.pk]))
    if request.META.get("QUERY_STRING"):
        url += "?" + request.META["QUERY_STRING"]
    safe = request.method in ("GET", "HEAD", "OPTIONS")
    return Response(
        {
            "detail": f"Profile {profile.pk} was merged into profile {survivor.pk}.",
            "merged_into": survivor.pk,
        },
        status=status.HTTP_301_MOVED_PERMANENTLY if safe else status.HTTP_308_PERMANENT_REDIRECT,
        headers={"Location": url},
    )


def _profile_or_404(profile_id: int) -> Profile:
    profile = selectors.profile_get(profile_id=profile_id)
    if profile is None:
        raise NotFound(f"No profile with id {profile_id}.")
    return profile


MERGED_RESPONSE = OpenApiResponse(
    response=inline_serializer(
        "MergedProfileRedirect",
        {"detail": serializers.CharField(), "merged_into": serializers.IntegerField()},
    ),
    description="The profile was merged into another; `Location` is the survivor's URL.",
)


class ProfileListApi(ProfilesResource, APIView):
    pagination_class = KeysetPagination

    # Lengths are counted as sent (the identifier rules trim the values themselves).
    class FilterSerializer(serializers.Serializer):
        email = serializers.CharField(
            required=False, max_length=MAX_VALUE_LENGTH, trim_whitespace=False
        )
        user_id = serializers.CharField(
            required=False, max_length=MAX_VALUE_LENGTH, trim_whitespace=False
        )
        anonymous_id = serializers.CharField(
            required=False, max_length=MAX_VALUE_LENGTH, trim_whitespace=False
        )
        phone = serializers.CharField(
            required=False, max_length=MAX_PHONE_TEXT, trim_whitespace=False
        )

    known_params = {"email", "user_id", "anonymous_id", "phone", "cursor", "limit", "format"}

    @extend_schema(
        operation_id="profiles_list",
        tags=["profiles"],
        summary="List and filter profiles",
        description=(
            "Live profiles (merged-away ones excluded), newest first. Identifier lookups are "
            "exact after the normalization identity keys have: ids are trimmed, `email` is "
            "trimmed and lower-cased, `phone` is read as E.164 (numbers without a country code "
            "in the server's default region); a value that can be no identifier (no email "
            "address, no valid phone number) is refused with 400. Trait "
            "filters are `trait.<key>=<value>`, dotted for nested traits; a value that parses "
            "as a JSON number, boolean or null also matches that typed value. Unknown query "
            "parameters are refused with 400."
        ),
        parameters=[
            OpenApiParameter(
                "email",
                {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": EMAIL_PATTERN},
                description="Email address (normalized).",
            ),
            OpenApiParameter(
                "user_id",
                {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": NOT_BLANK},
                description="`userId` as sent by the source.",
            ),
            OpenApiParameter(
                "anonymous_id",
                {"type": "string", "maxLength": MAX_VALUE_LENGTH, "pattern": NOT_BLANK},
                description="`anonymousId` as sent.",
            ),
            OpenApiParameter(
                "phone",
                {"type": "string", "maxLength": MAX_PHONE_TEXT, "pattern": NOT_BLANK},
                description="Phone number (compared as E.164); one that is no valid number "
                "is refused.",
            ),
            OpenApiParameter(
                "trait.{key}",
                str,
                description="Trait filter, e.g. `trait.country=DE`, `trait.address.city=Berlin`.",
            ),
        ],
        responses={200: ProfileOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self._filters(request)
        try:
            queryset = selectors.profile_list(filters=filters)
        except InvalidIdentifierError as error:
            raise ValidationError({error.kind: [str(error)]}) from None
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(queryset, request, view=self)
        data = ProfileOutputSerializer(page, many=True, context={"request": request}).data
        return paginator.get_paginated_response(data)

    def _filters(self, request: Request) -> selectors.ProfileFilters:
        params = request.query_params
        errors: dict[str, list[str]] = {}
        traits: dict[tuple[str, ...], str] = {}
        for name in params:
            if name.startswith(TRAIT_PARAM_PREFIX):
                path = tuple(name[len(TRAIT_PARAM_PREFIX) :].split("."))
                if "\x00" in name or "\x00" in params[name]:
                    # jsonb cannot hold NUL, so PostgreSQL refuses the query outright.
                    errors[name] = ["Trait filter keys and values cannot contain NUL (%00)."]
                elif not all(path) or len(path) > selectors.MAX_TRAIT_PATH_DEPTH:
                    errors[name] = [
                        "Trait filters look like trait.<key> or trait.<key>.<nested key>, "
                        f"at most {selectors.MAX_TRAIT_PATH_DEPTH} levels deep."
                    ]
                else:
                    traits[path] = params[name]
            elif name not in self.known_params:
                errors[name] = [
                    "Unknown filter. Use email, user_id, anonymous_id, phone, "
                    "trait.<key>, cursor or limit."
                ]
        serializer = self.FilterSerializer(
            data={
                key: params[key] for key in self.FilterSerializer._declared_fields if key in params
            }
        )
        if not serializer.is_valid():
            errors.update(serializer.errors)
        if errors:
            raise ValidationError(errors)
        return selectors.ProfileFilters(traits=traits, **serializer.validated_data)


class ProfileDetailApi(ProfilesResource, APIView):
    parser_classes = [JSONParser]

    @extend_schema_serializer(component_name="ProfileTraitsUpdate")
    class InputSerializer(serializers.Serializer):
        traits = serializers.JSONField(
            help_text="Keys to set; a null value deletes the key. Other traits are kept."
        )

        def to_internal_value(self, data: Any) -> Any:
            if isinstance(data, dict):
                unknown = sorted(set(data) - set(self.fields))
                if unknown:
                    raise ValidationError({key: ["Unknown field."] for key in unknown})
            return super().to_internal_value(data)

        def validate_traits(self, value: Any) -> dict[str, Any]:
            if not isinstance(value, dict):
                raise ValidationError("Must be an object of trait names to JSON values.")
            errors = {}
            for key in value:
                if not key.strip():
                    errors[key] = ["A trait name may not be blank."]
                elif len(key) > MAX_TRAIT_KEY_LENGTH:
                    errors[key[:40] + "…"] = [
                        f"A trait name is at most {MAX_TRAIT_KEY_LENGTH} characters."
                    ]
            if errors:
                raise ValidationError(errors)
            size = len(json.dumps(value).encode())
            if size > settings.INGEST_MAX_MESSAGE_BYTES:
                raise ValidationError(
                    f"Traits are {size} bytes as JSON; the limit is "
                    f"{settings.INGEST_MAX_MESSAGE_BYTES}."
                )
            return value

    @extend_schema(
        operation_id="profiles_retrieve",
        tags=["profiles"],
        summary="One profile",
        responses={
            200: ProfileOutputSerializer,
            301: MERGED_RESPONSE,
            404: OpenApiResponse(description="No profile with this id."),
        },
    )
    def get(self, request: Request, profile_id: int) -> Response:
        profile = _profile_or_404(profile_id)
        if profile.merged_into_id is not None:
            return _merged_redirect(request, profile, "api-profile-detail")
        services.profile_access_record(request=request, profile=profile, action="view")
        return Response(ProfileOutputSerializer(profile, context={"request": request}).data)

    @extend_schema(
        operation_id="profiles_traits_update",
        tags=["profiles"],
        summary="Update a profile's traits",
        description=(
            "Merges the given traits into the profile's traits: keys given are set, keys given "
            "as null are deleted, other keys are kept. Later events older than this edit do not "
            "overwrite it."
        ),
        request=InputSerializer,
        responses={
            200: ProfileOutputSerializer,
            308: MERGED_RESPONSE,
            400: OpenApiResponse(
                response=OpenApiTypes.OBJECT, description="What is wrong, by field path."
            ),
            404: OpenApiResponse(description="No profile with this id."),
        },
        examples=[
            OpenApiExample(
                "Set plan, drop nickname",
                value={"traits": {"plan": "pro", "nickname": None}},
                request_only=True,
            )
        ],
    )
    def patch(self, request: Request, profile_id: int) -> Response:
        profile = _profile_or_404(profile_id)
        if profile.merged_into_id is not None:
            return _merged_redirect(request, profile, "api-profile-detail")
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        services.profile_traits_patch(profile=profile, changes=serializer.validated_data["traits"])
        services.profile_access_record(request=request, profile=profile, action="change")
        return Response(ProfileOutputSerializer(profile, context={"request": request}).data)


class ProfileEventsApi(ProfilesResource, APIView):
    pagination_class = KeysetPagination
    cursor_ordering = ("-timestamp", "-id")

    @extend_schema(
        operation_id="profiles_events_list",
        tags=["profiles"],
        summary="A profile's event timeline",
        description="Newest first (by event time), cursor-paginated.",
        responses={
            200: EventOutputSerializer(many=True),
            301: MERGED_RESPONSE,
            404: OpenApiResponse(description="No profile with this id."),
        },
    )
    def get(self, request: Request, profile_id: int) -> Response:
        profile = _profile_or_404(profile_id)
        if profile.merged_into_id is not None:
            return _merged_redirect(request, profile, "api-profile-events")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.profile_events(profile=profile), request, view=self
        )
        services.profile_access_record(request=request, profile=profile, action="view")
        return paginator.get_paginated_response(
            EventOutputSerializer(page, many=True, context={"request": request}).data
        )
