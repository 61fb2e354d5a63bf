"""Identity REST API (routes in cdp/api_urls.py): merge suggestions (list, decide), merge,
unmerge, merge history, identity lookup, settings and rescans.

Keys need `identity:read` / `identity:write`. Staff: marketers and admins decide merges;
compliance reads (suggestions, history, lookup) but cannot merge, unmerge or decide; the
settings are written by admins only.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_fields import MAX_ID, JsonBooleanField, limit_parameter, openapi_30
from access.auth import ResourcePermission
from access.pii import PiiTraitsField, pii_for
from access.roles import ADMIN, COMPLIANCE, MARKETER
from identity import selectors, services
from identity.models import CandidateStatus, MatchCandidate, MergeRecord, RescanJob
from identity.schemas import SETTINGS_SCHEMA
from identity.tasks import identity_rescan_task
from profiles.identifiers import KINDS, InvalidIdentifierError, identifier_normalize
from profiles.models import Profile


class IdentityResource:
    resource = "identity"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (MARKETER, ADMIN)
    permission_classes = [ResourcePermission]


def _actor(request: Request) -> Any:
    return request.user if getattr(request.user, "pk", None) else None


class ProfileRefSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    traits = PiiTraitsField()
    merged_into = serializers.IntegerField(source="merged_into_id", allow_null=True)


class CandidateOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    profile_a = ProfileRefSerializer()
    profile_b = ProfileRefSerializer()
    reason = serializers.CharField()
    probability = serializers.FloatField()
    weight = serializers.FloatField()
    explanation = serializers.SerializerMethodField()
    status = serializers.CharField()
    decided_by = serializers.CharField(source="decided_by.username", allow_null=True, default=None)
    decided_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    @extend_schema_field(OpenApiTypes.OBJECT)
    def get_explanation(self, candidate: MatchCandidate) -> dict[str, Any]:
        return selectors.explanation_for(
            explanation=candidate.explanation, pii=pii_for(self.context.get("request"))
        )


class MergeOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    survivor = serializers.IntegerField(source="survivor_id")
    duplicate = serializers.IntegerField(source="duplicate_id")
    actor = serializers.CharField(source="actor.username", allow_null=True, default=None)
    reason = serializers.CharField()
    candidate = serializers.IntegerField(source="candidate_id", allow_null=True)
    trait_sources = serializers.JSONField()
    moved_identities = serializers.SerializerMethodField()
    moved_events = serializers.SerializerMethodField()
    created_at = serializers.DateTimeField()
    unmerged_at = serializers.DateTimeField(allow_null=True)
    unmerged_by = serializers.CharField(
        source="unmerged_by.username", allow_null=True, default=None
    )

    def get_moved_identities(self, record: MergeRecord) -> int:
        return len(record.moved_identities)

    def get_moved_events(self, record: MergeRecord) -> int:
        return len(record.moved_events)


def _limit(request: Request, default: int = 50, maximum: int = 200) -> int:
    raw = request.query_params.get("limit", str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({"limit": [f"must be a whole number, got {raw!r}"]}) from None
    if not 1 <= value <= maximum:
        raise ValidationError({"limit": [f"must be between 1 and {maximum}"]})
    return value


class SuggestionListApi(IdentityResource, APIView):
    class FilterSerializer(serializers.Serializer):
        status = serializers.ChoiceField(
            choices=[*CandidateStatus.values, "all"], default=CandidateStatus.PENDING
        )
        min_probability = serializers.FloatField(required=False, min_value=0, max_value=1)
        max_probability = serializers.FloatField(required=False, min_value=0, max_value=1)

    @extend_schema(
        tags=["identity"],
        parameters=[
            FilterSerializer,
            limit_parameter(maximum=200, default=50),
        ],
        extensions={"x-empty-is-absent": ["status", "min_probability", "max_probability"]},
        responses={200: CandidateOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        candidates = selectors.candidates_list(
            status="" if data["status"] == "all" else data["status"],
            min_probability=data.get("min_probability"),
            max_probability=data.get("max_probability"),
        )[: _limit(request)]
        return Response(
            {
                "results": CandidateOutputSerializer(
                    candidates, many=True, context={"request": request}
                ).data
            }
        )


class SuggestionDecideApi(IdentityResource, APIView):
    """Decide one or many suggestions: merge them, or "not the same person"."""

    class DecisionInputSerializer(serializers.Serializer):
        ids = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
            min_length=1,
            max_length=500,
        )
        decision = serializers.ChoiceField(choices=["merge", "reject"])

    @extend_schema(
        tags=["identity"],
        request=DecisionInputSerializer,
        responses={
            200: inline_serializer(
                "SuggestionDecision",
                {"decided": serializers.IntegerField(), "problems": serializers.ListField()},
            )
        },
    )
    def post(self, request: Request) -> Response:
        data = self.DecisionInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        ids = data.validated_data["ids"]
        found = list(MatchCandidate.objects.filter(pk__in=ids).order_by("-probability", "pk"))
        missing = sorted(set(ids) - {c.pk for c in found})
        if missing:
            raise ValidationError(
                {"ids": [f"no suggestion with id {', '.join(map(str, missing))}"]}
            )
        decided, problems = services.candidates_decide(
            candidates=found,
            merge=data.validated_data["decision"] == "merge",
            actor=_actor(request),
        )
        return Response({"decided": decided, "problems": problems})


class MergeApi(IdentityResource, APIView):
    """Merge two profiles now (the survivor is chosen by the settings' rule)."""

    class MergeInputSerializer(serializers.Serializer):
        profiles = serializers.ListField(
            child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
            min_length=2,
            max_length=2,
        )
        reason = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(
        tags=["identity"], request=MergeInputSerializer, responses={201: MergeOutputSerializer}
    )
    def post(self, request: Request) -> Response:
        data = self.MergeInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        first_id, second_id = data.validated_data["profiles"]
        profiles = {p.pk: p for p in Profile.objects.filter(pk__in=[first_id, second_id])}
        missing = [pk for pk in (first_id, second_id) if pk not in profiles]
        if missing:
            raise ValidationError({"profiles": [f"no profile with id {missing[0]}"]})
        try:
            with transaction.atomic():
                record = services.profiles_merge(
                    first=profiles[first_id],
                    second=profiles[second_id],
                    actor=_actor(request),
                    reason=data.validated_data.get("reason") or "manual merge",
                )
        except ValueError as error:
            raise ValidationError({"profiles": [str(error)]}) from None
        return Response(MergeOutputSerializer(record).data, status=status.HTTP_201_CREATED)


class MergeHistoryApi(IdentityResource, APIView):
    class FilterSerializer(serializers.Serializer):
        profile = serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID)

    @extend_schema(
        tags=["identity"],
        parameters=[FilterSerializer, limit_parameter(maximum=200, default=50)],
        extensions={"x-empty-is-absent": ["profile"]},
        responses={200: MergeOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        records = selectors.merge_history()
        profile_id = filters.validated_data.get("profile")
        if profile_id is not None:
            records = records.filter(survivor_id=profile_id) | records.filter(
                duplicate_id=profile_id
            )
        records = records.order_by("-created_at", "-id")[: _limit(request)]
        return Response({"results": MergeOutputSerializer(records, many=True).data})


class UnmergeApi(IdentityResource, APIView):
    @extend_schema(tags=["identity"], request=None, responses={200: MergeOutputSerializer})
    def post(self, request: Request, merge_id: int) -> Response:
        record = MergeRecord.objects.filter(pk=merge_id).first()
        if record is None:
            raise NotFound(f"No merge with id {merge_id}.")
        try:
            record = services.profile_unmerge(merge_record=record, actor=_actor(request))
        except ValueError as error:
            raise ValidationError({"merge": [str(error)]}) from None
        return Response(MergeOutputSerializer(record).data)


class IdentityLookupApi(IdentityResource, APIView):
    """Which profile an identifier (`kind`, `value`) belongs to (its current survivor)."""

    @extend_schema(
        tags=["identity"],
        parameters=[
            OpenApiParameter(
                "kind",
                str,
                required=True,
                # A known kind, or letters, digits and underscores (around spaces).
                pattern=r"^\s*\w*[^\W_]\w*\s*$",
            ),
            OpenApiParameter("value", str, required=True, pattern=r"^[^\x00]*[^\s\x00][^\x00]*$"),
        ],
        responses={
            200: ProfileRefSerializer,
            404: OpenApiResponse(description="No profile has this identifier."),
        },
    )
    def get(self, request: Request) -> Response:
        kind = request.query_params.get("kind", "").strip()
        value = request.query_params.get("value", "")
        errors: dict[str, list[str]] = {}
        if not kind:
            errors["kind"] = ["required"]
        elif not (kind in KINDS or kind.replace("_", "").isalnum()):
            errors["kind"] = [f"not an identifier kind: {kind!r}"]
        if not value.strip():
            errors["value"] = ["required"]
        elif "\x00" in value:
            # PostgreSQL text cannot hold NUL, so the query itself would fail.
            errors["value"] = ["cannot contain NUL (%00)"]
        if errors:
            raise ValidationError(errors)
        try:
            normalized = identifier_normalize(kind, value)
        except InvalidIdentifierError:
            raise ValidationError({"value": [f"not a valid {kind}: {value!r}"]}) from None
        profile = selectors.profile_by_identity(kind=kind, value=normalized)
        if profile is None:
            raise NotFound(f"No profile has {kind} {normalized!r}.")
        profile = selectors.profile_current(profile=profile)
        return Response(ProfileRefSerializer(profile, context={"request": request}).data)


class SettingsSerializer(serializers.Serializer):
    merge_threshold = serializers.FloatField()
    review_threshold = serializers.FloatField()
    fields = serializers.JSONField()
    kind_priority = serializers.JSONField()
    kind_limits = serializers.JSONField()
    blocked_values = serializers.JSONField()
    trait_strategy = serializers.CharField()
    survivor_rule = serializers.CharField()
    model_fitted_at = serializers.DateTimeField(allow_null=True)
    matched_until = serializers.DateTimeField(allow_null=True)


class SettingsApi(IdentityResource, APIView):
    write_roles = (ADMIN,)

    @extend_schema(tags=["identity"], responses={200: SettingsSerializer})
    def get(self, request: Request) -> Response:
        return Response(SettingsSerializer(selectors.match_settings()).data)

    @extend_schema(
        tags=["identity"],
        description="Any of the settings. Also checked: the review threshold is not above the "
        "merge threshold, no field path appears twice, `blocked_values` are regular expressions.",
        request={"application/json": openapi_30(SETTINGS_SCHEMA)},
        responses={200: SettingsSerializer},
    )
    def patch(self, request: Request) -> Response:
        if not isinstance(request.data, dict):
            raise ValidationError({"settings": ["must be a JSON object"]})
        values = dict(request.data)
        current = selectors.match_settings()
        values.setdefault("merge_threshold", current.merge_threshold)
        values.setdefault("review_threshold", current.review_threshold)
        try:
            settings = services.match_settings_update(actor=_actor(request), **values)
        except ValueError as error:
            detail = error.args[0] if error.args and isinstance(error.args[0], dict) else str(error)
            raise ValidationError(
                {k: [v] for k, v in detail.items()} if isinstance(detail, dict) else detail
            ) from None
        return Response(SettingsSerializer(settings).data)


class RescanOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.FloatField()
    step = serializers.CharField()
    profiles = serializers.IntegerField()
    candidates = serializers.IntegerField()
    merged = serializers.IntegerField()
    queued = serializers.IntegerField()
    held = serializers.CharField(help_text="Why nothing merged automatically, if so.")
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class RescanApi(IdentityResource, APIView):
    class RescanInputSerializer(serializers.Serializer):
        full = JsonBooleanField(default=False)

    @extend_schema(
        tags=["identity"],
        parameters=[limit_parameter(maximum=200, default=20)],
        responses={200: RescanOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        jobs = selectors.rescan_jobs()[: _limit(request, default=20)]
        return Response({"results": RescanOutputSerializer(jobs, many=True).data})

    @extend_schema(
        tags=["identity"],
        request=RescanInputSerializer,
        responses={
            202: RescanOutputSerializer,
            409: OpenApiResponse(description="A rescan is already queued or running."),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.RescanInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            job = services.rescan_job_create(
                full=data.validated_data["full"], actor=_actor(request)
            )
        except services.RescanBusyError as error:
            return Response({"rescan": [str(error)]}, status=status.HTTP_409_CONFLICT)
        transaction.on_commit(lambda: identity_rescan_task.delay(job.pk))
        return Response(RescanOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class RescanDetailApi(IdentityResource, APIView):
    @extend_schema(tags=["identity"], responses={200: RescanOutputSerializer})
    def get(self, request: Request, job_id: int) -> Response:
        job = RescanJob.objects.filter(pk=job_id).first()
        if job is None:
            raise NotFound(f"No rescan with id {job_id}.")
        return Response(RescanOutputSerializer(job).data)
