"""Campaigns REST API (routes in cdp/api_urls.py).

A campaign is sent and returned flat: `name`, `kind`, `status` and the definition's keys
(`trigger`, `entry`, `goal`, `frequency_cap`, `control`, `steps`; see
campaigns/definition.py). An invalid
definition answers 400 with its problems under the top-level key they belong to, each with the
JSON pointer of the node at fault from the body's root:
`{"steps": [{"pointer": "/steps/2/branch/if/trait", "message": "..."}]}`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from django.utils import timezone
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_fields import (
    MAX_ID,
    NOT_BLANK,
    JsonBooleanField,
    JsonStringField,
    OutboundUrlField,
    json_document_field,
    openapi_30,
)
from access.auth import ResourcePermission
from access.outbound import URL_SCHEMA
from access.pagination import KeysetPagination
from access.pii import PiiTextField
from access.roles import ADMIN, COMPLIANCE, MARKETER
from campaigns import selectors, services
from campaigns.definition import CHANNEL_SCHEMAS, SCHEMA, InvalidCampaign
from campaigns.models import Campaign, CampaignVersion, Channel
from campaigns.results import (
    EVENT_NAME_MAX,
    HOLDOUT_GOAL_EVENT,
    campaign_results,
    holdout_event_problem,
    holdout_report,
)
from campaigns.services.webpush import AUTH_PATTERN, P256DH_PATTERN
from campaigns.vapid import vapid_public_key
from identity.selectors import profile_by_identity
from profiles.models import Profile
from segments import conditions

DEFINITION_KEYS = ("trigger", "entry", "goal", "frequency_cap", "control", "steps")


class CampaignsResource:
    """`campaigns:read` / `campaigns:write` keys; marketers and admins build and send,
    compliance reads."""

    resource = "campaigns"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (MARKETER, ADMIN)
    permission_classes = [ResourcePermission]


def _invalid(error: InvalidCampaign) -> ValidationError:
    grouped: dict[str, list[dict[str, str]]] = defaultdict(list)
    for problem in error.errors:
        key = problem.pointer.split("/")[1] if problem.pointer else "non_field_errors"
        grouped[key].append(problem.as_dict())
    return ValidationError(dict(grouped))


class CampaignOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    kind = serializers.CharField()
    status = serializers.CharField()
    version = serializers.SerializerMethodField()
    trigger = serializers.SerializerMethodField()
    entry = serializers.SerializerMethodField()
    goal = serializers.SerializerMethodField()
    frequency_cap = serializers.SerializerMethodField()
    control = serializers.SerializerMethodField()
    steps = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()

    def _definition(self, campaign: Campaign) -> dict[str, Any]:
        return self.context["versions"][campaign.pk].definition

    def get_version(self, campaign: Campaign) -> int:
        return self.context["versions"][campaign.pk].number

    def get_trigger(self, campaign: Campaign) -> Any:
        return self._definition(campaign)["trigger"]

    def get_entry(self, campaign: Campaign) -> Any:
        return self._definition(campaign).get("entry", "once")

    def get_goal(self, campaign: Campaign) -> Any:
        return self._definition(campaign).get("goal")

    def get_frequency_cap(self, campaign: Campaign) -> Any:
        return self._definition(campaign).get("frequency_cap")

    def get_control(self, campaign: Campaign) -> Any:
        return self._definition(campaign).get("control")

    def get_steps(self, campaign: Campaign) -> Any:
        return self._definition(campaign)["steps"]


class CampaignDetailOutputSerializer(CampaignOutputSerializer):
    stats = serializers.SerializerMethodField()

    def get_stats(self, campaign: Campaign) -> dict[str, Any]:
        return selectors.campaign_stats(campaign=campaign)


def _campaign_data(campaign: Campaign, *, detail: bool = True) -> dict[str, Any]:
    versions = {campaign.pk: selectors.campaign_version_current(campaign=campaign)}
    serializer = CampaignDetailOutputSerializer if detail else CampaignOutputSerializer
    return serializer(campaign, context={"versions": versions}).data


DEFINITION = "CampaignDefinition"
_WHERE = SCHEMA["properties"]["goal"]["properties"]["where"]
_BRANCH_IF = SCHEMA["$defs"]["step"]["properties"]["branch"]["properties"]["if"]


def _documented(schema: Any) -> Any:
    """A part of the campaign definition's JSON Schema (campaigns.definition.SCHEMA) in
    OpenAPI 3.0's terms: its `$defs` as components, and the segment-language parts it leaves
    to the segment language's validator (event filters, a branch's condition) as that
    language's schema."""
    if schema is _WHERE:
        return openapi_30(conditions.KINDS["event"]["properties"]["where"])
    if schema is _BRANCH_IF:
        return {"$ref": "#/components/schemas/SegmentDefinition"}
    if isinstance(schema, list):
        return [_documented(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    if isinstance(schema.get("$ref"), str) and schema["$ref"].startswith("#/$defs/"):
        part = schema["$ref"].removeprefix("#/$defs/")
        return {"$ref": f"#/components/schemas/{DEFINITION}{part.capitalize()}"}
    return openapi_30({key: _documented(value) for key, value in schema.items()})


def definition_components() -> dict[str, Any]:
    """The components the campaign definition's documented parts refer to (its `$defs`)."""
    return {
        f"{DEFINITION}{part.capitalize()}": _documented(schema)
        for part, schema in SCHEMA["$defs"].items()
    }


def _part(key: str, **kwargs: Any) -> serializers.JSONField:
    schema = _documented(SCHEMA["properties"][key])
    if kwargs.get("allow_null"):  # null removes it
        schema = {"allOf": [schema], "nullable": True}
    return json_document_field(schema=schema, component_name=None, **kwargs)


class CampaignInputSerializer(serializers.Serializer):
    name = JsonStringField(max_length=200)
    kind = serializers.ChoiceField(choices=Campaign.Kind.choices, default=Campaign.Kind.MARKETING)
    status = serializers.ChoiceField(choices=Campaign.Status.choices, default=Campaign.Status.DRAFT)
    trigger = _part("trigger")
    entry = _part("entry", required=False)
    goal = _part("goal", required=False, allow_null=True)
    frequency_cap = _part("frequency_cap", required=False, allow_null=True)
    control = _part("control", required=False, allow_null=True)
    steps = _part("steps")


class CampaignListApi(CampaignsResource, APIView):
    @extend_schema(tags=["campaigns"], responses={200: CampaignOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        include = request.query_params.get("archived", "").lower() in ("1", "true", "yes")
        campaigns = list(selectors.campaign_list(include_archived=include))
        versions = selectors.campaign_versions_current(campaigns=campaigns)
        data = CampaignOutputSerializer(campaigns, many=True, context={"versions": versions}).data
        return Response({"results": data})

    @extend_schema(
        tags=["campaigns"],
        request=CampaignInputSerializer,
        responses={201: CampaignDetailOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = CampaignInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        definition = _definition_from(values, base={"entry": "once"})
        try:
            campaign = services.campaign_create(
                name=values["name"],
                kind=values["kind"],
                definition=definition,
                status=values["status"],
                actor=request.user,
            )
        except InvalidCampaign as error:
            raise _invalid(error) from None
        return Response(_campaign_data(campaign), status=status.HTTP_201_CREATED)


def _definition_from(values: dict[str, Any], *, base: dict[str, Any]) -> dict[str, Any]:
    """`base` with the body's definition keys applied; a null goal or cap removes it."""
    definition = dict(base)
    for key in DEFINITION_KEYS:
        if key in values:
            if values[key] is None:
                definition.pop(key, None)
            else:
                definition[key] = values[key]
    return definition


def _campaign_or_404(campaign_id: int) -> Campaign:
    campaign = selectors.campaign_get(campaign_id=campaign_id)
    if campaign is None:
        raise NotFound(f"No campaign with id {campaign_id}.")
    return campaign


class CampaignDetailApi(CampaignsResource, APIView):
    class CampaignUpdateSerializer(serializers.Serializer):
        name = JsonStringField(max_length=200, required=False)
        kind = serializers.ChoiceField(choices=Campaign.Kind.choices, required=False)
        status = serializers.ChoiceField(choices=Campaign.Status.choices, required=False)
        trigger = _part("trigger", required=False)
        entry = _part("entry", required=False)
        goal = _part("goal", required=False, allow_null=True)
        frequency_cap = _part("frequency_cap", required=False, allow_null=True)
        control = _part("control", required=False, allow_null=True)
        steps = _part("steps", required=False)

    @extend_schema(tags=["campaigns"], responses={200: CampaignDetailOutputSerializer})
    def get(self, request: Request, campaign_id: int) -> Response:
        return Response(_campaign_data(_campaign_or_404(campaign_id)))

    @extend_schema(
        tags=["campaigns"],
        request=CampaignUpdateSerializer,
        responses={200: CampaignDetailOutputSerializer},
    )
    def patch(self, request: Request, campaign_id: int) -> Response:
        campaign = _campaign_or_404(campaign_id)
        data = self.CampaignUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        definition = None
        if any(key in values for key in DEFINITION_KEYS):
            current: CampaignVersion = selectors.campaign_version_current(campaign=campaign)
            definition = _definition_from(values, base=current.definition)
        try:
            campaign = services.campaign_update(
                campaign=campaign,
                actor=request.user,
                name=values.get("name"),
                kind=values.get("kind"),
                definition=definition,
                status=values.get("status"),
            )
        except InvalidCampaign as error:
            raise _invalid(error) from None
        except services.CampaignStateError as error:
            raise ValidationError({"status": [str(error)]}) from None
        return Response(_campaign_data(campaign))


class _CampaignStatusApi(CampaignsResource, APIView):
    target: str = ""

    @extend_schema(
        tags=["campaigns"], request=None, responses={200: CampaignDetailOutputSerializer}
    )
    def post(self, request: Request, campaign_id: int) -> Response:
        campaign = _campaign_or_404(campaign_id)
        try:
            campaign = services.campaign_status_set(
                campaign=campaign, status=self.target, actor=request.user
            )
        except services.CampaignStateError as error:
            raise ValidationError({"status": [str(error)]}) from None
        return Response(_campaign_data(campaign))


class CampaignActivateApi(_CampaignStatusApi):
    target = Campaign.Status.ACTIVE


class CampaignPauseApi(_CampaignStatusApi):
    target = Campaign.Status.PAUSED


class CampaignSchemaApi(CampaignsResource, APIView):
    @extend_schema(tags=["campaigns"], responses={200: dict})
    def get(self, request: Request) -> Response:
        return Response(SCHEMA)


class ArmOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    recipients = serializers.IntegerField()
    sent = serializers.IntegerField()
    delivered = serializers.IntegerField()
    opened = serializers.IntegerField()
    clicked = serializers.IntegerField()
    converted = serializers.IntegerField()
    revenue = serializers.FloatField(help_text="In the workspace currency (WORKSPACE_CURRENCY).")
    revenue_unconverted = serializers.DictField(
        child=serializers.FloatField(),
        help_text="Revenue in currencies without a conversion rate, per currency (not in revenue).",
    )
    conversion_rate = serializers.FloatField(allow_null=True)
    ci95 = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    lift_vs_control = serializers.FloatField(allow_null=True)
    p_value = serializers.FloatField(allow_null=True)
    probability_best = serializers.FloatField(allow_null=True)
    bot_opened = serializers.IntegerField(help_text="Opens flagged as machine-made.")
    bot_clicked = serializers.IntegerField(help_text="Clicks flagged as machine-made.")


class ResultsOutputSerializer(serializers.Serializer):
    variants = ArmOutputSerializer(many=True)
    control = ArmOutputSerializer(allow_null=True)
    decision = serializers.CharField()


class CampaignResultsApi(CampaignsResource, APIView):
    """An experiment's results: per variant (a campaign testing none has one, "message") and
    for the control group (null without one). People are counted once, in the arm they were
    assigned; `conversion_rate` is converted / recipients with `ci95` its 95% confidence
    sequence; `lift_vs_control` is relative, against the control group or, without one, the
    first variant; `p_value` is always valid (mSPRT: it may be checked any number of times);
    `probability_best` comes from Beta posteriors. campaigns/results.py says how conversions
    are attributed and campaigns/stats.py what the test assumes."""

    @extend_schema(tags=["campaigns"], responses={200: ResultsOutputSerializer})
    def get(self, request: Request, campaign_id: int) -> Response:
        found = campaign_results(campaign=_campaign_or_404(campaign_id))
        return Response({key: found[key] for key in ("variants", "control", "decision")})


class HoldoutGroupSerializer(serializers.Serializer):
    people = serializers.IntegerField()
    converted = serializers.IntegerField()
    conversion_rate = serializers.FloatField(allow_null=True)
    ci95 = serializers.ListField(child=serializers.FloatField(), min_length=2, max_length=2)
    revenue = serializers.FloatField()
    revenue_per_person = serializers.FloatField(allow_null=True)


class CampaignHoldoutApi(CampaignsResource, APIView):
    """What all marketing adds against the workspace holdout over the last `days` (1 to 365,
    default 30): conversion rate and revenue per person of the people marketing reached
    (`marketed`) and of the holdout, the difference of rates with its always-valid 95%
    interval, the relative lift, the p-value and a decision in words; `configured` is false
    (and the groups null) while CAMPAIGN_HOLDOUT_PERCENT is 0. A conversion is `event`
    (default `Order Completed`) after the person was first reached in the window;
    campaigns.results.holdout_report says exactly who is compared."""

    class HoldoutInputSerializer(serializers.Serializer):
        days = serializers.IntegerField(required=False, min_value=1, max_value=365, default=30)
        event = serializers.CharField(
            required=False, default=HOLDOUT_GOAL_EVENT, max_length=EVENT_NAME_MAX
        )

        def validate_event(self, value: str) -> str:
            problem = holdout_event_problem(value)
            if problem:
                raise ValidationError(problem)
            return value

    class HoldoutOutputSerializer(serializers.Serializer):
        configured = serializers.BooleanField()
        percent = serializers.FloatField()
        event = serializers.CharField()
        since = serializers.DateTimeField()
        until = serializers.DateTimeField()
        marketed = HoldoutGroupSerializer(allow_null=True)
        holdout = HoldoutGroupSerializer(allow_null=True)
        difference = serializers.FloatField(allow_null=True)
        difference_ci95 = serializers.ListField(
            child=serializers.FloatField(), allow_null=True, min_length=2, max_length=2
        )
        lift = serializers.FloatField(allow_null=True)
        lift_ci95 = serializers.ListField(
            child=serializers.FloatField(), allow_null=True, min_length=2, max_length=2
        )
        p_value = serializers.FloatField(allow_null=True)
        decision = serializers.CharField()

    @extend_schema(
        tags=["campaigns"],
        parameters=[HoldoutInputSerializer],
        responses={200: HoldoutOutputSerializer},
        extensions={"x-empty-is-absent": ["days", "event"]},
    )
    def get(self, request: Request) -> Response:
        data = self.HoldoutInputSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        now = timezone.now()
        found = holdout_report(
            since=now - dt.timedelta(days=data.validated_data["days"]),
            now=now,
            event=data.validated_data["event"],
        )
        return Response(self.HoldoutOutputSerializer(found).data)


class DeliveryOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    campaign = serializers.IntegerField(source="campaign_id")
    version = serializers.IntegerField(source="version.number")
    step = serializers.CharField()
    profile = serializers.IntegerField(source="profile_id")
    entry = serializers.IntegerField(source="entry_id")
    channel = serializers.IntegerField(source="channel_id")
    channel_kind = serializers.CharField(source="channel.kind")
    status = serializers.CharField()
    skip_reason = serializers.CharField()
    send_after = serializers.DateTimeField(allow_null=True)
    delay_reason = serializers.CharField()
    attempts = serializers.IntegerField()
    last_error = PiiTextField()
    variant = serializers.CharField()
    is_control = serializers.BooleanField()
    message_digest = serializers.CharField()
    provider_message_id = serializers.CharField()
    created_at = serializers.DateTimeField()
    sent_at = serializers.DateTimeField(allow_null=True)
    opened_at = serializers.DateTimeField(allow_null=True)
    clicked_at = serializers.DateTimeField(allow_null=True)


class CampaignDeliveriesApi(CampaignsResource, APIView):
    pagination_class = KeysetPagination
    cursor_ordering = ("-created_at", "-id")

    @extend_schema(tags=["campaigns"], responses={200: DeliveryOutputSerializer(many=True)})
    def get(self, request: Request, campaign_id: int) -> Response:
        campaign = _campaign_or_404(campaign_id)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.campaign_deliveries(campaign=campaign), request, view=self
        )
        return paginator.get_paginated_response(
            DeliveryOutputSerializer(page, many=True, context={"request": request}).data
        )


class ProfileDeliveriesApi(CampaignsResource, APIView):
    pagination_class = KeysetPagination
    cursor_ordering = ("-created_at", "-id")

    @extend_schema(tags=["campaigns"], responses={200: DeliveryOutputSerializer(many=True)})
    def get(self, request: Request, profile_id: int) -> Response:
        profile = Profile.objects.filter(pk=profile_id).first()
        if profile is None:
            raise NotFound(f"No profile with id {profile_id}.")
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.profile_deliveries(profile=profile), request, view=self
        )
        return paginator.get_paginated_response(
            DeliveryOutputSerializer(page, many=True, context={"request": request}).data
        )


class DeadLetterListApi(CampaignsResource, APIView):
    """Deliveries that failed for good (`?channel=` narrows to one channel), in cursor pages."""

    pagination_class = KeysetPagination
    cursor_ordering = ("-created_at", "-id")

    class DeadLetterFilterSerializer(serializers.Serializer):
        channel = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    @extend_schema(tags=["campaigns"], responses={200: DeliveryOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        filters = self.DeadLetterFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(
            selectors.deliveries_failed(channel_id=filters.validated_data.get("channel")),
            request,
            view=self,
        )
        return paginator.get_paginated_response(
            DeliveryOutputSerializer(page, many=True, context={"request": request}).data
        )


_DELIVERY_IDS = {
    "type": "array",
    "items": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    "maxItems": 1000,
    "description": "Failed deliveries to replay, by id.",
}
_DATABASE_ID = {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}
# The replay body names exactly one of its three choices (ReplayInputSerializer.validate).
REPLAY_REQUEST_SCHEMA = {
    "type": "object",
    "properties": {
        "deliveries": _DELIVERY_IDS,
        "channel": {**_DATABASE_ID, "description": "Every failed delivery of this channel."},
        "all": {"type": "boolean", "description": "Every failed delivery."},
    },
    "anyOf": [
        {
            "required": ["deliveries"],
            "not": {"required": ["channel"]},
            "properties": {"all": {"enum": [False]}},
        },
        {
            "required": ["channel"],
            "not": {"required": ["deliveries"]},
            "properties": {"all": {"enum": [False]}},
        },
        {
            "required": ["all"],
            "properties": {"all": {"enum": [True]}},
            "not": {"anyOf": [{"required": ["deliveries"]}, {"required": ["channel"]}]},
        },
    ],
}


class DeadLetterReplayApi(CampaignsResource, APIView):
    """Replay failed deliveries: `{"deliveries": [ids]}`, `{"channel": id}` or `{"all": true}`."""

    class ReplayInputSerializer(serializers.Serializer):
        deliveries = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=2**63 - 1),
            required=False,
            max_length=1000,
        )
        channel = serializers.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
        all = serializers.BooleanField(required=False, default=False)

        def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
            chosen = [key for key in ("deliveries", "channel") if key in attrs] + (
                ["all"] if attrs.get("all") else []
            )
            if len(chosen) != 1:
                raise ValidationError("Give exactly one of: deliveries, channel, all.")
            return attrs

    @extend_schema(
        tags=["campaigns"],
        request={"application/json": REPLAY_REQUEST_SCHEMA},
        extensions={"x-body-required": True},
        responses={200: inline_serializer("Replayed", {"queued": serializers.IntegerField()})},
    )
    def post(self, request: Request) -> Response:
        data = self.ReplayInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        failed = selectors.deliveries_failed(channel_id=values.get("channel"))
        if "deliveries" in values:
            failed = failed.filter(pk__in=values["deliveries"])
        queued = services.deliveries_replay(deliveries=failed, actor=request.user)
        return Response({"queued": queued})


# --- channels --------------------------------------------------------------------------------


class ChannelOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    name = serializers.CharField()
    config = serializers.JSONField()
    is_active = serializers.BooleanField()
    disabled_reason = serializers.CharField()
    failing_since = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


_secret_answer = inline_serializer(
    "ChannelWithSecret",
    {
        "channel": ChannelOutputSerializer(),
        "secret": serializers.CharField(
            allow_null=True,
            help_text="Webhook or push signing secret (whsec_...): shown this once.",
        ),
    },
)


def _config_documented(config_schema: dict[str, Any]) -> dict[str, Any]:
    documented = openapi_30(config_schema)
    if "url" in documented["properties"]:
        # The URL is also one the platform may call (checked after the schema).
        documented["properties"]["url"] = URL_SCHEMA
    return documented


# A channel's config has the schema of its kind (campaigns.definition.CHANNEL_SCHEMAS).
CHANNEL_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["kind", "name", "config"],
    "properties": {
        "kind": {"type": "string", "enum": list(CHANNEL_SCHEMAS)},
        "name": {"type": "string", "maxLength": 200, "pattern": NOT_BLANK},
        "config": {"type": "object", "description": "The kind's settings (no secret)."},
    },
    "anyOf": [
        {"properties": {"kind": {"enum": [kind]}, "config": _config_documented(config_schema)}}
        for kind, config_schema in CHANNEL_SCHEMAS.items()
    ],
}


class ChannelListApi(CampaignsResource, APIView):
    class ChannelInputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=Channel.Kind.choices)
        name = JsonStringField(max_length=200)
        config = serializers.JSONField()

    @extend_schema(tags=["campaigns"], responses={200: ChannelOutputSerializer(many=True)})
    def get(self, request: Request) -> Response:
        channels = selectors.channel_list()
        return Response({"results": ChannelOutputSerializer(channels, many=True).data})

    @extend_schema(
        tags=["campaigns"],
        request={"application/json": CHANNEL_REQUEST_SCHEMA},
        extensions={"x-body-required": True},
        examples=[
            OpenApiExample(
                "An email channel",
                value={
                    "kind": "email",
                    "name": "Newsletter",
                    "config": {"from": "news@example.com", "from_name": "The shop"},
                },
                request_only=True,
            )
        ],
        responses={201: _secret_answer},
    )
    def post(self, request: Request) -> Response:
        data = self.ChannelInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            channel, secret = services.channel_create(**data.validated_data, actor=request.user)
        except InvalidCampaign as error:
            raise _invalid(error) from None
        body = {"channel": ChannelOutputSerializer(channel).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)


def _channel_or_404(channel_id: int) -> Channel:
    channel = selectors.channel_get(channel_id=channel_id)
    if channel is None:
        raise NotFound(f"No channel with id {channel_id}.")
    return channel


class ChannelDetailApi(CampaignsResource, APIView):
    class ChannelUpdateSerializer(serializers.Serializer):
        name = serializers.CharField(max_length=200, required=False)
        config = serializers.JSONField(required=False)
        is_active = serializers.BooleanField(required=False)

    @extend_schema(tags=["campaigns"], responses={200: ChannelOutputSerializer})
    def get(self, request: Request, channel_id: int) -> Response:
        return Response(ChannelOutputSerializer(_channel_or_404(channel_id)).data)

    @extend_schema(
        tags=["campaigns"],
        request=ChannelUpdateSerializer,
        responses={200: ChannelOutputSerializer},
    )
    def patch(self, request: Request, channel_id: int) -> Response:
        channel = _channel_or_404(channel_id)
        data = self.ChannelUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            channel = services.channel_update(
                channel=channel, actor=request.user, **data.validated_data
            )
        except InvalidCampaign as error:
            raise _invalid(error) from None
        return Response(ChannelOutputSerializer(channel).data)


class ChannelFeedbackApi(CampaignsResource, APIView):
    """The ESP's report about a message sent through this channel (point its webhook here with
    a `campaigns:write` key): `{"type": "bounce" | "complaint", "message_id": "<...>",
    "permanent": true}`. A hard bounce stops sends to the address; a complaint withdraws the
    channel's consent purpose. An unknown message id is answered 404."""

    class FeedbackInputSerializer(serializers.Serializer):
        type = serializers.ChoiceField(choices=["bounce", "complaint"])
        # Read as sent (the view strips it): an id of blanks finds no message (404) rather
        # than being refused as blank, which the schema's string does not say.
        message_id = JsonStringField(max_length=255, trim_whitespace=False)
        permanent = JsonBooleanField(required=False, default=True)

    @extend_schema(tags=["campaigns"], request=FeedbackInputSerializer, responses={200: dict})
    def post(self, request: Request, channel_id: int) -> Response:
        channel = _channel_or_404(channel_id)
        data = self.FeedbackInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        delivery = services.delivery_feedback_record(
            channel=channel,
            message_id=values["message_id"].strip(),
            kind=values["type"],
            permanent=values["permanent"],
        )
        if delivery is None:
            raise NotFound("No message with that id was sent through this channel.")
        return Response({"delivery": delivery.pk, "recorded": values["type"]})


class ChannelSecretRotateApi(CampaignsResource, APIView):
    """A new signing secret for a webhook or push channel, shown this once; the previous one
    keeps signing beside it for a day."""

    @extend_schema(tags=["campaigns"], request=None, responses={200: _secret_answer})
    def post(self, request: Request, channel_id: int) -> Response:
        channel = _channel_or_404(channel_id)
        if channel.kind == Channel.Kind.EMAIL:
            raise ValidationError({"kind": ["email channels have no signing secret"]})
        secret = services.channel_secret_rotate(channel=channel, actor=request.user)
        return Response({"channel": ChannelOutputSerializer(channel).data, "secret": secret})


# The PushSubscription JSON as browsers give it (`toJSON()`; other keys are ignored) and the
# person it is for, as PushSubscriptionApi.post and push_subscription_register check them.
PUSH_SUBSCRIPTION_REQUEST_SCHEMA = {
    "type": "object",
    "required": ["subscription"],
    "description": "The person: `profile` (an id) or `userId` (the profile wins if both).",
    "properties": {
        "profile": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        "userId": {"type": "string", "maxLength": 500, "pattern": NOT_BLANK},
        "subscription": {
            "type": "object",
            "required": ["endpoint", "keys"],
            "properties": {
                "endpoint": URL_SCHEMA,
                "keys": {
                    "type": "object",
                    "required": ["p256dh", "auth"],
                    "properties": {
                        "p256dh": {"type": "string", "pattern": P256DH_PATTERN},
                        "auth": {"type": "string", "pattern": AUTH_PATTERN},
                    },
                },
            },
        },
    },
}


class PushKeysSerializer(serializers.Serializer):
    p256dh = JsonStringField(max_length=200)
    auth = JsonStringField(max_length=64)


class PushSubscriptionSerializer(serializers.Serializer):
    # Checked by push_subscription_register, which names `subscription.endpoint`.
    endpoint = OutboundUrlField(checked=False)
    keys = PushKeysSerializer()


class PushRegisterSerializer(serializers.Serializer):
    profile = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)
    userId = JsonStringField(required=False, max_length=500)
    subscription = PushSubscriptionSerializer()


class PushSubscriptionApi(CampaignsResource, APIView):
    """A browser's Web Push subscription for a person (the site's server calls this with a
    `campaigns:write` key when a visitor allows notifications): POST registers the
    PushSubscription JSON (`{"endpoint", "keys": {"p256dh", "auth"}}`) for `profile` (an id)
    or `userId`; DELETE with `?endpoint=` removes it. GET gives the VAPID public key to pass
    to `pushManager.subscribe({applicationServerKey})`."""

    class DeleteSerializer(serializers.Serializer):
        # Any text names the subscription to remove (none has it: 404); the endpoint was
        # checked when it was registered.
        endpoint = JsonStringField(max_length=2000)

    @extend_schema(
        tags=["campaigns"],
        responses={200: inline_serializer("VapidKey", {"publicKey": serializers.CharField()})},
    )
    def get(self, request: Request) -> Response:
        return Response({"publicKey": vapid_public_key()})

    @extend_schema(
        tags=["campaigns"],
        request={"application/json": PUSH_SUBSCRIPTION_REQUEST_SCHEMA},
        extensions={"x-body-required": True},
        responses={201: dict, 404: OpenApiResponse(description="No such person.")},
    )
    def post(self, request: Request) -> Response:
        data = PushRegisterSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        values = data.validated_data
        subscription = values["subscription"]
        profile = _subscriber(values)
        try:
            registered = services.push_subscription_register(
                profile=profile,
                endpoint=subscription["endpoint"],
                p256dh=subscription["keys"]["p256dh"],
                auth=subscription["keys"]["auth"],
                actor=request.user,
            )
        except services.InvalidSubscription as error:
            raise ValidationError({f"subscription.{error.field}": [str(error)]}) from None
        return Response(
            {"id": registered.pk, "profile": profile.pk}, status=status.HTTP_201_CREATED
        )

    @extend_schema(
        tags=["campaigns"],
        parameters=[
            OpenApiParameter(
                "endpoint",
                {"type": "string", "maxLength": 2000, "pattern": NOT_BLANK},
                required=True,
                description="The endpoint of the subscription to remove.",
            )
        ],
        responses={204: None, 404: OpenApiResponse(description="No subscription has it.")},
    )
    def delete(self, request: Request) -> Response:
        data = self.DeleteSerializer(data=request.query_params)
        data.is_valid(raise_exception=True)
        if not services.push_subscription_delete(
            endpoint=data.validated_data["endpoint"], actor=request.user
        ):
            raise NotFound("No subscription with that endpoint.")
        return Response(status=status.HTTP_204_NO_CONTENT)


def _subscriber(values: dict[str, Any]) -> Profile:
    if "profile" in values:
        profile = selectors.profile_get(profile_id=values["profile"])
    elif "userId" in values:
        profile = profile_by_identity(kind="user_id", value=values["userId"].strip())
    else:
        raise ValidationError({"profile": ["give the person's profile id or userId"]})
    if profile is None:
        raise NotFound("No such person.")
    return profile
