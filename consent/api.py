"""REST API: consents (CMS banners), privacy requests (CRM systems), the audit log.

Each view declares its resource (API key scope family) and staff roles. Privacy requests and
exports are for compliance and admin only; marketers may read consent state.
"""

from typing import Any

from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    inline_serializer,
)
from rest_framework import serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_fields import (
    MAX_ID,
    JsonBooleanField,
    JsonStringField,
    limit_parameter,
    query_whole_number,
)
from access.auth import ResourcePermission, client_ip
from access.models import ApiKey, AuditLog
from access.pii import PiiDocumentField, PiiValueField
from access.roles import ADMIN, COMPLIANCE, MARKETER
from access.selectors import audit_log_filtered
from access.services import audit_record_request
from consent import selectors, services
from consent.hashing import SUBJECT_KINDS
from consent.models import (
    ConsentSource,
    PrivacyRequest,
    Regulation,
    RegulationType,
    RequestStatus,
)
from consent.tasks import privacy_request_process_task
from consent.views_common import export_response
from profiles.api import IDENTIFIER_SCHEMAS
from profiles.models import Profile


class Pagination(LimitOffsetPagination):
    """Offset pages whose `limit` and `offset` are checked (DRF's ignore a bad value)."""

    default_limit = 50
    max_limit = 500
    parameters = [
        limit_parameter(maximum=500, default=50),
        OpenApiParameter("offset", {"type": "integer", "minimum": 0, "default": 0}),
    ]

    def get_limit(self, request: Request) -> int:
        return query_whole_number(
            request, "limit", default=self.default_limit, minimum=1, maximum=self.max_limit
        )

    def get_offset(self, request: Request) -> int:
        return query_whole_number(request, "offset", default=0, minimum=0)


# The person a consent or privacy request is about, by identifiers (at least one).
SUBJECT_SCHEMA = {
    "type": "object",
    "minProperties": 1,
    "additionalProperties": False,
    "properties": {kind: IDENTIFIER_SCHEMAS[kind] for kind in SUBJECT_KINDS},
}


@extend_schema_field(SUBJECT_SCHEMA)
class SubjectField(serializers.DictField):
    """{"email": ...} | {"user_id": ...} | {"phone": ...} | {"anonymous_id": ...}."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        value = super().to_internal_value(data)
        if not value:
            raise serializers.ValidationError(
                "give at least one identifier: " + ", ".join(SUBJECT_KINDS)
            )
        if "profile_id" in value:  # a request outlives profiles (merges, erasure)
            raise serializers.ValidationError(
                "name the person by their identifiers: " + ", ".join(SUBJECT_KINDS)
            )
        try:
            selectors.subject_identifiers(value)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from exc
        return value


@extend_schema_field(
    {
        **SUBJECT_SCHEMA,
        "properties": {
            **SUBJECT_SCHEMA["properties"],
            "profile_id": {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        },
    }
)
class ConsentSubjectField(serializers.DictField):
    """A consent's subject: identifiers, or also the profile's id (checked by the serializer)."""


def _api_key(request: Request) -> ApiKey | None:
    return request.auth if isinstance(request.auth, ApiKey) else None


class ConsentCreateApi(APIView):
    resource = "consents"
    read_roles = (COMPLIANCE, ADMIN)
    write_roles = (COMPLIANCE, ADMIN)
    permission_classes = [ResourcePermission]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ConsentInput"

        subject = ConsentSubjectField()
        purpose = JsonStringField(max_length=64)
        granted = JsonBooleanField()
        source = serializers.ChoiceField(choices=ConsentSource.choices, default=ConsentSource.API)
        policy_version = JsonStringField(
            max_length=64, required=False, allow_blank=True, default=""
        )
        occurred_at = serializers.DateTimeField(required=False)

        def validate_subject(self, value: dict[str, Any]) -> dict[str, Any]:
            profile_id = value.get("profile_id")
            if "profile_id" in value and (
                not isinstance(profile_id, int) or isinstance(profile_id, bool)
            ):
                raise serializers.ValidationError("profile_id must be an integer")
            try:
                selectors.subject_identifiers(value)
            except ValueError as exc:
                raise serializers.ValidationError(str(exc)) from exc
            return value

        def validate_purpose(self, value: str) -> str:
            try:
                selectors.purpose_get(code=value)
            except selectors.UnknownPurposeError as exc:
                raise serializers.ValidationError(str(exc)) from exc
            return value

    class OutputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ConsentRecord"

        id = serializers.IntegerField()
        profile_id = serializers.IntegerField()
        purpose = serializers.CharField(source="purpose.code")
        granted = serializers.BooleanField()
        source = serializers.CharField()
        policy_version = serializers.CharField()
        occurred_at = serializers.DateTimeField()
        recorded_at = serializers.DateTimeField()

    @extend_schema(
        operation_id="consents_create",
        tags=["consents"],
        summary="Record a consent decision (e.g. from a CMS consent banner)",
        description=(
            "The subject is named by `email`, `user_id`, `phone`, `anonymous_id` or "
            "`profile_id`; 404 when no profile holds it. Appends to the profile's consent "
            "history; the decision takes effect at once."
        ),
        request=InputSerializer,
        responses={201: OutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        subject = data.validated_data["subject"]
        identifiers = selectors.subject_identifiers(subject)
        profile_ids = selectors.subject_profile_ids(
            identifiers=identifiers, profile_id=subject.get("profile_id")
        )
        if not profile_ids:
            return Response(
                {"subject": ["no profile matches this subject"]}, status=status.HTTP_404_NOT_FOUND
            )
        # The survivor of a merge holds the history; duplicates merged into it are skipped.
        profile = (
            Profile.objects.filter(pk__in=profile_ids, merged_into__isnull=True)
            .order_by("pk")
            .first()
        ) or Profile.objects.get(pk=profile_ids[0])
        api_key = _api_key(request)
        record = services.consent_record(
            profile=profile,
            purpose=data.validated_data["purpose"],
            granted=data.validated_data["granted"],
            source=data.validated_data["source"],
            policy_version=data.validated_data["policy_version"],
            occurred_at=data.validated_data.get("occurred_at"),
            evidence={"api_key": api_key.prefix} if api_key else {"user_id": request.user.pk},
            actor=request.user,
            ip=client_ip(request),
        )
        return Response(self.OutputSerializer(record).data, status=status.HTTP_201_CREATED)


class ProfileConsentsApi(APIView):
    resource = "consents"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (COMPLIANCE, ADMIN)
    permission_classes = [ResourcePermission]

    class StateSerializer(serializers.Serializer):
        class Meta:
            ref_name = "ConsentState"

        purpose = serializers.CharField()
        granted = serializers.BooleanField()
        by_default = serializers.BooleanField()
        suppressed = serializers.BooleanField()
        source = serializers.CharField()
        policy_version = serializers.CharField()
        occurred_at = serializers.DateTimeField(allow_null=True)

    @extend_schema(
        operation_id="profile_consents",
        tags=["consents"],
        summary="Current consent per purpose, and the history, of one profile",
        responses={
            200: inline_serializer(
                "ProfileConsents",
                {
                    "profile_id": serializers.IntegerField(),
                    "state": StateSerializer(many=True),
                    "records": ConsentCreateApi.OutputSerializer(many=True),
                },
            )
        },
    )
    def get(self, request: Request, profile_id: int) -> Response:
        profile = get_object_or_404(Profile, pk=profile_id)
        records = selectors.consent_records_of_profile(profile=profile)[:500]
        audit_record_request(
            request=request,
            action="view",
            resource="consents",
            profile_id=profile.pk,
        )
        return Response(
            {
                "profile_id": profile.pk,
                "state": self.StateSerializer(
                    selectors.consent_current_state(profile=profile), many=True
                ).data,
                "records": ConsentCreateApi.OutputSerializer(records, many=True).data,
            }
        )


class PurposeListApi(APIView):
    resource = "consents"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (ADMIN,)
    permission_classes = [ResourcePermission]

    @extend_schema(
        operation_id="consent_purposes",
        tags=["consents"],
        summary="Purposes consent is asked for, with legal basis and default",
        # The one list that is a plain array (short and fixed): see cdp/schema.py.
        extensions={"x-plain-array": True},
        responses={
            200: inline_serializer(
                "Purpose",
                {
                    "code": serializers.CharField(),
                    "name": serializers.CharField(),
                    "description": serializers.CharField(),
                    "legal_basis": serializers.CharField(),
                    "granted_by_default": serializers.BooleanField(),
                },
                many=True,
            )
        },
    )
    def get(self, request: Request) -> Response:
        return Response(
            [
                {
                    "code": p.code,
                    "name": p.name,
                    "description": p.description,
                    "legal_basis": p.legal_basis,
                    "granted_by_default": p.granted_by_default,
                }
                for p in selectors.purposes_all()
            ]
        )


class PrivacyRequestOutput(serializers.ModelSerializer):
    subject_kinds = serializers.SerializerMethodField()
    result = PiiDocumentField()
    verification = PiiDocumentField()

    class Meta:
        model = PrivacyRequest
        fields = [
            "id",
            "regulation_type",
            "regulation",
            "status",
            "subject_kinds",
            "progress",
            "due_at",
            "created_at",
            "started_at",
            "finished_at",
            "verified_at",
            "result",
            "verification",
            "error",
        ]

    def get_subject_kinds(self, obj: PrivacyRequest) -> list[str]:
        return [k for k in obj.subject_kinds.split(",") if k]

    def to_representation(self, instance: PrivacyRequest) -> dict[str, Any]:
        data = super().to_representation(instance)
        data["export_ready"] = bool(instance.export_file)
        return data


class PrivacyRequestListCreateApi(APIView):
    resource = "privacy"
    read_roles = (COMPLIANCE, ADMIN)
    write_roles = (COMPLIANCE, ADMIN)
    permission_classes = [ResourcePermission]

    class InputSerializer(serializers.Serializer):
        class Meta:
            ref_name = "PrivacyRequestInput"

        regulation_type = serializers.ChoiceField(choices=RegulationType.choices)
        regulation = serializers.ChoiceField(choices=Regulation.choices, default=Regulation.GDPR)
        subject = SubjectField()
        changes = serializers.DictField(required=False)

    # RECTIFY takes the traits to change; the other types take no changes.
    REQUEST_SCHEMA = {
        "type": "object",
        "required": ["regulation_type", "subject"],
        "properties": {
            "regulation_type": {"type": "string", "enum": list(RegulationType.values)},
            "regulation": {"type": "string", "enum": list(Regulation.values)},
            "subject": SUBJECT_SCHEMA,
            "changes": {"type": "object"},
        },
        "anyOf": [
            {
                "required": ["changes"],
                "properties": {
                    "regulation_type": {"enum": [RegulationType.RECTIFY.value]},
                    "changes": {
                        "required": ["traits"],
                        "properties": {"traits": {"type": "object", "minProperties": 1}},
                    },
                },
            },
            {
                "properties": {
                    "regulation_type": {
                        "enum": [t for t in RegulationType.values if t != RegulationType.RECTIFY]
                    },
                    "changes": {"maxProperties": 0},
                },
            },
        ],
    }

    @extend_schema(
        operation_id="privacy_requests_list",
        tags=["privacy"],
        summary="The privacy request queue, by due date",
        parameters=[
            OpenApiParameter("status", str, description="A status, or `open`."),
            *Pagination.parameters,
        ],
        responses={200: PrivacyRequestOutput(many=True)},
    )
    def get(self, request: Request) -> Response:
        status_filter = request.query_params.get("status") or None
        queue = selectors.privacy_requests_queue(status=status_filter)
        page = Pagination()
        rows = page.paginate_queryset(queue, request, view=self)
        return page.get_paginated_response(
            PrivacyRequestOutput(rows, many=True, context={"request": request}).data
        )

    @extend_schema(
        operation_id="privacy_requests_create",
        tags=["privacy"],
        summary="Submit a privacy request (Segment regulation types, plus ACCESS and RECTIFY)",
        description=(
            "`subject` names the person by `email`, `user_id`, `phone` or `anonymous_id`. A "
            "request sent with an API key (scope `privacy:write`) counts as verified and is "
            'queued at once. RECTIFY takes `changes: {"traits": {...}}`.'
        ),
        request={"application/json": REQUEST_SCHEMA},
        extensions={"x-body-required": True},
        responses={201: PrivacyRequestOutput},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            created = services.privacy_request_create(
                regulation_type=data.validated_data["regulation_type"],
                regulation=data.validated_data["regulation"],
                subject=data.validated_data["subject"],
                changes=data.validated_data.get("changes"),
                submitted_by=request.user,
                api_key=_api_key(request),
                ip=client_ip(request),
            )
        except services.PrivacyRequestError as exc:
            field, _, message = str(exc).partition(": ")
            if not message:
                field, message = "non_field_errors", str(exc)
            return Response({field: [message]}, status=status.HTTP_400_BAD_REQUEST)
        if created.status == RequestStatus.INITIALIZED:  # sent by a key: verified, runs now
            privacy_request_process_task.delay_on_commit(created.pk)
        return Response(
            PrivacyRequestOutput(created, context={"request": request}).data,
            status=status.HTTP_201_CREATED,
        )


class PrivacyRequestDetailApi(APIView):
    resource = "privacy"
    read_roles = (COMPLIANCE, ADMIN)
    write_roles = (COMPLIANCE, ADMIN)
    permission_classes = [ResourcePermission]

    @extend_schema(
        operation_id="privacy_request_detail",
        tags=["privacy"],
        summary="Follow one privacy request",
        responses={200: PrivacyRequestOutput},
    )
    def get(self, request: Request, request_id: int) -> Response:
        privacy_request = get_object_or_404(PrivacyRequest, pk=request_id)
        return Response(PrivacyRequestOutput(privacy_request, context={"request": request}).data)


class PrivacyRequestExportApi(APIView):
    resource = "privacy"
    read_roles = (COMPLIANCE, ADMIN)
    write_roles = (COMPLIANCE, ADMIN)
    permission_classes = [ResourcePermission]

    @extend_schema(
        operation_id="privacy_request_export",
        tags=["privacy"],
        summary="Download the JSON export of an ACCESS request",
        description=(
            "The JSON document of everything held about the subject (`format`, `request_id`, "
            "`profiles`, `related` rows by table), as an attachment. Without `pii:read` a key "
            "gets it with personal data masked."
        ),
        responses={
            (200, "application/json"): OpenApiTypes.OBJECT,
            404: OpenApiResponse(description="No such request, or no export (yet)."),
        },
    )
    def get(self, request: Request, request_id: int) -> FileResponse:
        privacy_request = get_object_or_404(PrivacyRequest, pk=request_id)
        if not privacy_request.export_file:
            raise Http404("this request has no export (yet)")
        return export_response(request, privacy_request)


class AuditLogListApi(APIView):
    resource = "audit"
    read_roles = (COMPLIANCE, ADMIN)
    write_roles = ()
    permission_classes = [ResourcePermission]

    class FilterSerializer(serializers.Serializer):
        class Meta:
            ref_name = "AuditFilter"

        # Blank (after trimming): no filter.
        actor = serializers.CharField(required=False, default="", allow_blank=True)
        action = serializers.CharField(required=False, default="", allow_blank=True)
        resource = serializers.CharField(required=False, default="", allow_blank=True)
        profile_id = serializers.IntegerField(required=False)
        since = serializers.DateTimeField(required=False)
        until = serializers.DateTimeField(required=False)

    class OutputSerializer(serializers.ModelSerializer):
        class Meta:
            ref_name = "AuditLogEntry"
            model = AuditLog
            fields = [
                "id",
                "created_at",
                "actor_label",
                "action",
                "resource",
                "resource_id",
                "profile_id",
                "ip",
                "details",
            ]

        ip = PiiValueField(kind="ip", allow_null=True)
        details = PiiDocumentField()

    @extend_schema(
        operation_id="audit_log",
        tags=["audit"],
        summary="The audit log: who viewed, exported, changed or erased what, when, from where",
        parameters=[
            FilterSerializer,
            *Pagination.parameters,
        ],
        extensions={
            "x-empty-is-absent": ["actor", "action", "resource", "profile_id", "since", "until"]
        },
        responses={200: OutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        filters = self.FilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        rows = audit_log_filtered(**filters.validated_data)
        page = Pagination()
        return page.get_paginated_response(
            self.OutputSerializer(
                page.paginate_queryset(rows, request, view=self),
                many=True,
                context={"request": request},
            ).data
        )
