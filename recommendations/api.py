"""Catalog REST API: `/api/v1/items/...` and `/api/v1/item-imports/...` (routes in
cdp/api_urls.py).

Items are addressed by their external id (the shop's product_id or sku), which is what a
shop's front end and feeds know. Lists answer `{"results": [...], "next": url-or-null}`.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.http import QueryDict
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiParameter,
    OpenApiRequest,
    OpenApiResponse,
    extend_schema,
)
from jsonschema import Draft202012Validator
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.api_fields import (
    AMOUNT_PATTERN,
    MAX_ID,
    NOT_BLANK,
    AmountField,
    JsonStringField,
    json_document_field,
    openapi_30,
)
from access.auth import ResourcePermission
from access.outbound import URL_SCHEMA
from access.pagination import KeysetPagination
from access.parsers import JSONParser
from access.roles import ADMIN, COMPLIANCE, MARKETER
from recommendations import selectors, services, serving
from recommendations.catalog import (
    ATTRIBUTES_SCHEMA,
    AVAILABILITY,
    MAX_LENGTHS,
    MAX_PRICE,
    InvalidItem,
    category_path,
    item_fields_clean,
)
from recommendations.models import Item, ModelRun
from recommendations.recommenders import KINDS, PARAMS_SCHEMAS, InvalidParams
from recommendations.rules import DEVICES, RULES_SCHEMA, InvalidRules
from recommendations.tasks import item_import_task, model_train_task
from segments.selectors import segment_get


class RecommendationsResource:
    """`recommendations:read` / `recommendations:write` keys; marketers and admins write,
    compliance reads."""

    resource = "recommendations"
    read_roles = (MARKETER, COMPLIANCE, ADMIN)
    write_roles = (MARKETER, ADMIN)
    permission_classes = [ResourcePermission]


class ItemOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    category = serializers.CharField(help_text='A path, top level first: "Home > Kitchen".')
    brand = serializers.CharField()
    price = serializers.DecimalField(max_digits=14, decimal_places=2, allow_null=True)
    currency = serializers.CharField()
    image_url = serializers.CharField()
    url = serializers.CharField()
    attributes = serializers.JSONField()
    availability = serializers.ChoiceField(choices=AVAILABILITY)
    catalog_fields = serializers.ListField(
        child=serializers.CharField(),
        help_text="Fields an explicit catalog write set: events never overwrite them.",
    )
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


def _item_text(max_length: int) -> dict[str, Any]:
    return {"type": ["string", "null"], "maxLength": max_length}


# An http(s) URL (of the form the platform calls), "" or null: none.
_ITEM_URL = {"type": ["string", "null"], "anyOf": [{"maxLength": 0}, URL_SCHEMA]}
_ITEM_ID = {"type": "string", "maxLength": MAX_LENGTHS["external_id"], "pattern": NOT_BLANK}
# An item as the API takes it: each field typed as JSON means it (the catalog's own cleaning,
# shared with CSV imports and feeds, also reads numbers as text and other spellings); null or
# "" leaves a text field empty. `product_id`, `sku` and `id` name the external id too, `name`
# the title (the first one given wins).
ITEM_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **{name: _ITEM_ID for name in ("external_id", "product_id", "sku", "id")},
        "title": _item_text(MAX_LENGTHS["title"]),
        "name": _item_text(MAX_LENGTHS["title"]),
        "description": _item_text(MAX_LENGTHS["description"]),
        "category": {
            **_item_text(MAX_LENGTHS["category"]),
            "description": 'A path, "Home > Kitchen" (slashes also separate).',
        },
        "brand": _item_text(MAX_LENGTHS["brand"]),
        "price": {
            "type": ["string", "number", "null"],
            "pattern": AMOUNT_PATTERN,
            "minimum": 0,
            "maximum": float(MAX_PRICE),
        },
        "currency": {
            "type": ["string", "null"],
            "pattern": r"^([A-Za-z]{3})?\Z",
            "description": "ISO 4217, e.g. EUR.",
        },
        "image_url": _ITEM_URL,
        "url": _ITEM_URL,
        "attributes": {**ATTRIBUTES_SCHEMA, "description": "Facet names to values."},
        "availability": {"enum": list(AVAILABILITY)},
    },
}
_ITEM_VALIDATOR = Draft202012Validator(ITEM_SCHEMA)
_ITEM_DOCUMENTED = openapi_30(ITEM_SCHEMA)
# A create names the item by one of the id fields.
_ONE_ID_REQUIRED = [{"required": [name]} for name in ("external_id", "product_id", "sku", "id")]
ITEM_EXAMPLE = OpenApiExample(
    "A product",
    value={"external_id": "SKU-1", "title": "Mug", "price": "12.50", "currency": "EUR"},
    request_only=True,
)


def _item_fields(request: Request, *, partial: bool) -> dict[str, Any]:
    """The body's item fields, each of its documented JSON type (400 by field otherwise); the
    catalog then cleans them (recommendations.catalog)."""
    body = _body(request)
    errors: dict[str, list[str]] = {}
    for error in _ITEM_VALIDATOR.iter_errors(body):
        if not error.absolute_path:  # unknown fields are the catalog's to name
            continue
        message = error.message
        if "propertyNames" in error.schema_path:
            message = "facet names are 1 to 100 characters"
        errors.setdefault(str(error.absolute_path[0]), [message])
    if errors:
        # With what the catalog finds wrong in the rest (unknown fields, no id): all at once.
        rest = {key: value for key, value in body.items() if key not in errors}
        try:
            item_fields_clean(rest, partial=partial)
        except InvalidItem as error:
            errors = {**error.errors, **errors}
        raise ValidationError(errors)
    return body


def _body(request: Request) -> dict[str, Any]:
    if not isinstance(request.data, dict):
        raise ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    return dict(request.data)


def _item_or_404(item_id: str) -> Item:
    item = selectors.item_get(external_id=item_id)
    if item is None:
        raise NotFound(f"No item with external id {item_id!r}.")
    return item


class ItemListApi(RecommendationsResource, APIView):
    pagination_class = KeysetPagination
    parser_classes = [JSONParser]

    class FilterSerializer(serializers.Serializer):
        q = serializers.CharField(required=False, max_length=200)
        category = serializers.CharField(required=False, max_length=500)
        brand = serializers.CharField(required=False, max_length=200)
        availability = serializers.ChoiceField(choices=AVAILABILITY, required=False)
        price_min = AmountField(required=False)
        price_max = AmountField(required=False)

    paging_params = {"cursor", "limit", "format"}

    @extend_schema(
        operation_id="items_list",
        tags=["recommendations"],
        summary="List and filter catalog items",
        description=(
            "Newest first. `category` matches the path and every path under it. Unknown query "
            "parameters are refused with 400."
        ),
        parameters=[FilterSerializer],
        extensions={"x-empty-is-absent": list(FilterSerializer._declared_fields)},
        responses={200: ItemOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = set(params) - set(self.FilterSerializer._declared_fields) - self.paging_params
        if unknown:
            known = ", ".join([*self.FilterSerializer._declared_fields, "cursor", "limit"])
            raise ValidationError({name: [f"Unknown filter. Use {known}."] for name in unknown})
        # The query dict itself, so that an empty value reads as absent (`?price_min=`).
        filters = self.FilterSerializer(data=params)
        filters.is_valid(raise_exception=True)
        paginator = self.pagination_class()
        items = selectors.item_list(filters=selectors.ItemFilters(**filters.validated_data))
        page = paginator.paginate_queryset(items, request, view=self)
        return paginator.get_paginated_response(ItemOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="items_create",
        tags=["recommendations"],
        summary="Create a catalog item",
        description=(
            "An item that events created before is taken over: the fields given become "
            "catalog fields, which events never overwrite. 409 if the catalog already has it."
        ),
        request={"application/json": {**_ITEM_DOCUMENTED, "anyOf": _ONE_ID_REQUIRED}},
        extensions={"x-body-required": True},
        examples=[ITEM_EXAMPLE],
        responses={
            201: ItemOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by field."),
            409: OpenApiResponse(description="The catalog already has this external id."),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            item = services.item_create(fields=_item_fields(request, partial=False))
        except InvalidItem as error:
            raise ValidationError(error.errors) from None
        except services.ItemExists as error:
            return Response(
                {"external_id": [f"The catalog already has {error.args[0]!r}; PATCH it."]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ItemOutputSerializer(item).data, status=status.HTTP_201_CREATED)


class ItemDetailApi(RecommendationsResource, APIView):
    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="items_retrieve",
        tags=["recommendations"],
        responses={200: ItemOutputSerializer, 404: OpenApiResponse(description="No such item.")},
    )
    def get(self, request: Request, item_id: str) -> Response:
        return Response(ItemOutputSerializer(_item_or_404(item_id)).data)

    @extend_schema(
        operation_id="items_update",
        tags=["recommendations"],
        summary="Update some of an item's fields",
        request={"application/json": _ITEM_DOCUMENTED},
        extensions={"x-body-required": True},
        responses={
            200: ItemOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by field."),
            404: OpenApiResponse(description="No such item."),
            409: OpenApiResponse(description="Another item has the new external id."),
        },
    )
    def patch(self, request: Request, item_id: str) -> Response:
        item = _item_or_404(item_id)
        try:
            item = services.item_update(item=item, fields=_item_fields(request, partial=True))
        except InvalidItem as error:
            raise ValidationError(error.errors) from None
        except services.ItemExists as error:
            return Response(
                {"external_id": [f"Another item has the external id {error.args[0]!r}."]},
                status=status.HTTP_409_CONFLICT,
            )
        return Response(ItemOutputSerializer(item).data)

    @extend_schema(
        operation_id="items_destroy",
        tags=["recommendations"],
        responses={204: None, 404: OpenApiResponse(description="No such item.")},
    )
    def delete(self, request: Request, item_id: str) -> Response:
        services.item_delete(item=_item_or_404(item_id))
        return Response(status=status.HTTP_204_NO_CONTENT)


class ItemImportOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    file_name = serializers.CharField()
    format = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField(help_text="Percent of rows processed.")
    total_rows = serializers.IntegerField()
    processed_rows = serializers.IntegerField()
    created_count = serializers.IntegerField()
    updated_count = serializers.IntegerField()
    error_count = serializers.IntegerField()
    errors = serializers.JSONField(
        help_text='Bad rows, skipped: [{"line": 7, "errors": {"price": ["..."]}}, ...].'
    )
    message = serializers.CharField()
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ItemImportCreateApi(RecommendationsResource, APIView):
    parser_classes = [MultiPartParser]

    class ItemImportInputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="A .csv (with a header row) or .jsonl file.")

    @extend_schema(
        operation_id="item_imports_create",
        tags=["recommendations"],
        summary="Import catalog items from a CSV or JSONL file",
        description="Runs on a worker; poll the answer's id for progress and bad rows.",
        request={
            "multipart/form-data": OpenApiRequest(
                {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "minLength": 1,
                            "description": "A .csv (with a header row) or .jsonl file, not "
                            "empty; its rows are checked by the import (bad ones reported).",
                        }
                    },
                },
                # The file's name says its format (access.row_files.import_format).
                encoding={
                    "file": {
                        "contentType": "text/csv, application/jsonl, application/x-ndjson",
                        "headers": {
                            "Content-Disposition": {
                                "schema": {
                                    "type": "string",
                                    "pattern": r'filename="[^"]*\.([Cc][Ss][Vv]|'
                                    r'[Jj][Ss][Oo][Nn][Ll]|[Nn][Dd][Jj][Ss][Oo][Nn])"',
                                },
                                "example": 'form-data; name="file"; filename="items.csv"',
                            }
                        },
                    }
                },
            )
        },
        extensions={"x-body-required": True},
        responses={
            202: ItemImportOutputSerializer,
            415: OpenApiResponse(description="The body is no multipart form."),
        },
    )
    def post(self, request: Request) -> Response:
        data = self.ItemImportInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        upload = data.validated_data["file"]
        try:
            job = services.item_import_create(
                upload=upload, file_name=upload.name, actor=request.user
            )
        except services.ImportFileError as error:
            raise ValidationError({"file": [str(error)]}) from None
        transaction.on_commit(lambda: item_import_task.delay(job.pk))
        return Response(ItemImportOutputSerializer(job).data, status=status.HTTP_202_ACCEPTED)


class ItemImportDetailApi(RecommendationsResource, APIView):
    @extend_schema(
        operation_id="item_imports_retrieve",
        tags=["recommendations"],
        responses={200: ItemImportOutputSerializer, 404: OpenApiResponse(description="None.")},
    )
    def get(self, request: Request, job_id: int) -> Response:
        job = selectors.item_import_get(job_id=job_id)
        if job is None:
            raise NotFound(f"No item import with id {job_id}.")
        return Response(ItemImportOutputSerializer(job).data)


class RecommendationOutputSerializer(serializers.Serializer):
    external_id = serializers.CharField()
    title = serializers.CharField()
    url = serializers.CharField()
    image_url = serializers.CharField()
    price = serializers.CharField(allow_null=True)
    currency = serializers.CharField()
    category = serializers.CharField()
    score = serializers.FloatField()
    reason = serializers.CharField(help_text='e.g. "because you viewed Blue mug".')


class AnswerOutputSerializer(serializers.Serializer):
    slot = serializers.CharField()
    personal = serializers.BooleanField(
        help_text="False when the list is not built from the person's data (no consent to "
        "personalization, or a non-personal slot)."
    )
    model_run = serializers.IntegerField(allow_null=True)
    rules_version = serializers.IntegerField(allow_null=True)
    cached = serializers.BooleanField()
    results = RecommendationOutputSerializer(many=True, source="items")


def answer_output(answer: serving.Answer) -> dict[str, Any]:
    """AnswerOutputSerializer's output, which documents it: an answer's rows are built as the
    API shows them (serving._rows), and the serializer's field-by-field copy was ~0.6 ms of a
    ~1 ms cached answer (tests/recommendations hold the two equal)."""
    return {
        "slot": answer.slot,
        "personal": answer.personal,
        "model_run": answer.model_run,
        "rules_version": answer.rules_version,
        "cached": answer.cached,
        "results": answer.items,
    }


class RecommendationQuerySerializer(serializers.Serializer):
    slot = serializers.ChoiceField(choices=serving.SLOTS, required=False, default="home")
    k = serializers.IntegerField(min_value=1, max_value=serving.MAX_K, required=False, default=10)
    page_item = serializers.CharField(required=False, max_length=255)
    category = serializers.CharField(required=False, max_length=500)
    brand = serializers.CharField(required=False, max_length=200)
    price_min = AmountField(required=False)
    price_max = AmountField(required=False)
    segment = serializers.IntegerField(min_value=1, max_value=MAX_ID, required=False)
    device = serializers.ChoiceField(choices=DEVICES, required=False)
    hour = serializers.IntegerField(min_value=0, max_value=23, required=False)


def recommendation_request(
    params: QueryDict, *, extra: frozenset[str] = frozenset(), similar_to: str = ""
) -> serving.Request:
    """The query's parameters, checked (ValidationError, NotFound); `similar_to` (the similar
    items endpoint) fixes the slot and the page item, which may then not be given."""
    allowed = set(RecommendationQuerySerializer._declared_fields) | extra | {"format"}
    if similar_to:
        allowed -= {"slot", "page_item"}
    unknown = sorted(set(params) - allowed)
    if unknown:
        known = ", ".join(sorted(allowed - {"format"}))
        raise ValidationError({name: [f"Unknown parameter. Use {known}."] for name in unknown})
    query = RecommendationQuerySerializer(
        data={k: params[k] for k in params if k in RecommendationQuerySerializer._declared_fields}
    )
    query.is_valid(raise_exception=True)
    data = query.validated_data
    if "\x00" in "".join(str(v) for v in data.values()):
        raise ValidationError({"non_field_errors": ["Parameters cannot contain NUL (%00)."]})
    page_item = similar_to or data.get("page_item", "")
    if page_item and not similar_to and selectors.item_get(external_id=page_item) is None:
        raise NotFound(f"No item with external id {page_item!r} (page_item).")
    segment = data.get("segment")
    if segment is not None and segment_get(segment_id=segment) is None:
        raise NotFound(f"No segment with id {segment} (segment).")
    chosen = "similar" if similar_to else data["slot"]
    if segment is not None and chosen != "trending":
        raise ValidationError({"segment": ["Only the trending slot takes a segment."]})
    if chosen == "similar" and not page_item:
        raise ValidationError({"page_item": ["The similar slot needs the page's item."]})
    return serving.Request(
        slot=chosen,
        k=data["k"],
        page_item=page_item,
        category=category_path(data.get("category", "")),
        brands=(data["brand"],) if data.get("brand") else (),
        price_min=data.get("price_min"),
        price_max=data.get("price_max"),
        segment=segment,
        device=data.get("device", ""),
        hour=data.get("hour"),
    )


def _text(max_length: int) -> dict[str, Any]:
    # Trimmed, then checked: something besides white space, at most `max_length` characters.
    return {"type": "string", "maxLength": max_length, "pattern": NOT_BLANK}


RECOMMENDATION_PARAMETERS = [
    OpenApiParameter("slot", str, enum=list(serving.SLOTS), description="Default home."),
    OpenApiParameter(
        "k",
        {"type": "integer", "minimum": 1, "maximum": serving.MAX_K},
        description=f"How many items, 1 to {serving.MAX_K} (default 10).",
    ),
    OpenApiParameter("page_item", _text(255), description="External id of the page's item."),
    OpenApiParameter(
        "category", _text(500), description="The page's category: re-ranks; filters `trending`."
    ),
    OpenApiParameter("brand", _text(200), description="Only this brand."),
    OpenApiParameter(
        "price_min",
        {"type": "string", "pattern": AMOUNT_PATTERN},
        description="Price band, inclusive.",
    ),
    OpenApiParameter(
        "price_max",
        {"type": "string", "pattern": AMOUNT_PATTERN},
        description="Price band, inclusive.",
    ),
    OpenApiParameter(
        "segment",
        {"type": "integer", "minimum": 1, "maximum": MAX_ID},
        description="`trending` among this segment's members (that slot only).",
    ),
    OpenApiParameter(
        "device",
        str,
        enum=list(DEVICES),
        description="The visitor's device type (default: the person's last known one): the "
        "rule set's context boosts for it apply.",
    ),
    OpenApiParameter(
        "hour",
        {"type": "integer", "minimum": 0, "maximum": 23},
        description="The visitor's local hour, 0 to 23: the context boosts for that time of day "
        "apply (none that name hours without it).",
    ),
]


class ProfileRecommendationsApi(RecommendationsResource, APIView):
    @extend_schema(
        operation_id="profiles_recommendations",
        tags=["recommendations"],
        summary="Recommendations for a profile",
        description=(
            "A merged-away profile answers for the profile it was merged into. Without the "
            "person's consent to `personalization` the list is non-personal (popular items)."
        ),
        parameters=RECOMMENDATION_PARAMETERS,
        responses={
            200: AnswerOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by parameter."),
            404: OpenApiResponse(description="No such profile, page item or segment."),
        },
    )
    def get(self, request: Request, profile_id: int) -> Response:
        answer = serving.recommendations_for_profile_id(
            profile_id=profile_id, request=recommendation_request(request.query_params)
        )
        if answer is None:
            raise NotFound(f"No profile with id {profile_id}.")
        return Response(answer_output(answer))


IDENTIFIER_PARAMS = frozenset({"user_id", "anonymous_id"})


def recommendation_identifier(params: QueryDict) -> tuple[str, str]:
    """The (kind, value) of the one visitor identifier given, or a ValidationError."""
    given = {k: params[k] for k in sorted(IDENTIFIER_PARAMS & set(params))}
    if len(given) != 1:
        raise ValidationError({"user_id": ["Give exactly one of user_id or anonymous_id."]})
    kind, value = next(iter(given.items()))
    if not value or len(value) > 255 or "\x00" in value:
        raise ValidationError({kind: ["Must be 1 to 255 characters, without NUL."]})
    return kind, value


class IdentifierRecommendationsApi(RecommendationsResource, APIView):
    @extend_schema(
        operation_id="recommendations_by_identifier",
        tags=["recommendations"],
        summary="Recommendations for the visitor a shop's front end knows",
        description=(
            "Give exactly one of `user_id` or `anonymous_id`, as the SDK sends them. A visitor "
            "not seen yet gets the non-personal list."
        ),
        parameters=[
            OpenApiParameter("user_id", {"type": "string", "minLength": 1, "maxLength": 255}),
            OpenApiParameter("anonymous_id", {"type": "string", "minLength": 1, "maxLength": 255}),
            *RECOMMENDATION_PARAMETERS,
        ],
        responses={
            200: AnswerOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by parameter."),
            404: OpenApiResponse(description="No such page item or segment."),
        },
    )
    def get(self, request: Request) -> Response:
        kind, value = recommendation_identifier(request.query_params)
        wanted = recommendation_request(request.query_params, extra=IDENTIFIER_PARAMS)
        answer = serving.recommendations_for_identifier(kind=kind, value=value, request=wanted)
        return Response(answer_output(answer))


class ItemSimilarApi(RecommendationsResource, APIView):
    @extend_schema(
        operation_id="items_similar",
        tags=["recommendations"],
        summary="Items similar to this one",
        parameters=[p for p in RECOMMENDATION_PARAMETERS if p.name not in ("slot", "page_item")],
        responses={
            200: AnswerOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by parameter."),
            404: OpenApiResponse(description="No such item or segment."),
        },
    )
    def get(self, request: Request, item_id: str) -> Response:
        item = _item_or_404(item_id)
        wanted = recommendation_request(request.query_params, similar_to=item.external_id)
        answer = serving.recommendations_anonymous(request=wanted)
        return Response(answer_output(answer))


class ModelRunOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    status = serializers.CharField()
    progress = serializers.IntegerField()
    message = serializers.CharField()
    params = serializers.JSONField()
    format_version = serializers.IntegerField()
    data_hash = serializers.CharField()
    metrics = serializers.JSONField(
        help_text="Validation metrics beside the serving model's and recent popularity's on "
        "the same window, and the paired bootstrap interval of the NDCG@10 difference."
    )
    decision = serializers.CharField()
    decision_reason = serializers.CharField()
    is_serving = serializers.BooleanField()
    training_seconds = serializers.FloatField(allow_null=True)
    created_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField(allow_null=True)


class ModelRunListApi(RecommendationsResource, APIView):
    pagination_class = KeysetPagination
    parser_classes = [JSONParser]

    class ModelRunInputSerializer(serializers.Serializer):
        kind = serializers.ChoiceField(choices=sorted(KINDS), default=settings.RECS_DEFAULT_KIND)
        params = serializers.DictField(required=False, help_text="Overrides of the defaults.")

    # The params a run takes are its kind's (PARAMS_SCHEMAS); without `kind`, the default's.
    REQUEST_SCHEMA = {
        "type": "object",
        "properties": {
            "kind": {"type": "string", "enum": sorted(KINDS)},
            "params": {"type": "object", "description": "Overrides of the kind's defaults."},
        },
        "anyOf": [
            {
                **({} if kind == settings.RECS_DEFAULT_KIND else {"required": ["kind"]}),
                "properties": {"kind": {"enum": [kind]}, "params": openapi_30(schema)},
            }
            for kind, schema in PARAMS_SCHEMAS.items()
        ],
    }

    @extend_schema(
        operation_id="recommender_runs_list",
        tags=["recommendations"],
        summary="Training runs, newest first",
        responses={200: ModelRunOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        paginator = self.pagination_class()
        page = paginator.paginate_queryset(selectors.model_runs(), request, view=self)
        return paginator.get_paginated_response(ModelRunOutputSerializer(page, many=True).data)

    @extend_schema(
        operation_id="recommender_runs_create",
        tags=["recommendations"],
        summary="Train a recommender on a worker",
        request={"application/json": REQUEST_SCHEMA},
        responses={202: ModelRunOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.ModelRunInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            run = services.model_train_request(
                kind=data.validated_data["kind"],
                params=data.validated_data.get("params"),
                actor=request.user,
            )
        except InvalidParams as error:
            raise ValidationError({"params": [str(error)]}) from None
        transaction.on_commit(lambda: model_train_task.delay(run.pk))
        return Response(ModelRunOutputSerializer(run).data, status=status.HTTP_202_ACCEPTED)


def _run_or_404(run_id: int) -> ModelRun:
    run = selectors.model_run_get(run_id=run_id)
    if run is None:
        raise NotFound(f"No training run with id {run_id}.")
    return run


class ModelRunDetailApi(RecommendationsResource, APIView):
    @extend_schema(
        operation_id="recommender_runs_retrieve",
        tags=["recommendations"],
        responses={200: ModelRunOutputSerializer, 404: OpenApiResponse(description="None.")},
    )
    def get(self, request: Request, run_id: int) -> Response:
        return Response(ModelRunOutputSerializer(_run_or_404(run_id)).data)


class ModelRunRollbackApi(RecommendationsResource, APIView):
    @extend_schema(
        operation_id="recommender_runs_rollback",
        tags=["recommendations"],
        summary="Put this earlier run back into service",
        request=None,
        responses={
            200: ModelRunOutputSerializer,
            409: OpenApiResponse(
                OpenApiTypes.OBJECT,
                description='The run has no model that can serve (yet): `{"run": [...]}`.',
            ),
        },
    )
    def post(self, request: Request, run_id: int) -> Response:
        try:
            run = services.model_rollback(run=_run_or_404(run_id), actor=request.user)
        except services.RollbackRefused as error:
            # The request is right; the run's state refuses it (a queued run may serve later).
            return Response({"run": [str(error)]}, status=status.HTTP_409_CONFLICT)
        return Response(ModelRunOutputSerializer(run).data)


class RulesApi(RecommendationsResource, APIView):
    parser_classes = [JSONParser]

    class RulesInputSerializer(serializers.Serializer):
        rules = json_document_field(schema=RULES_SCHEMA, component_name="RecommendationRules")
        note = JsonStringField(required=False, allow_blank=True, max_length=300)

    class RulesOutputSerializer(serializers.Serializer):
        version = serializers.IntegerField(allow_null=True)
        rules = serializers.JSONField()
        note = serializers.CharField()
        schema = serializers.JSONField()

    def _answer(self, rule_set: Any) -> Response:
        return Response(
            self.RulesOutputSerializer(
                {
                    "version": rule_set.version if rule_set else None,
                    "rules": rule_set.rules if rule_set else {},
                    "note": rule_set.note if rule_set else "",
                    "schema": RULES_SCHEMA,
                }
            ).data
        )

    @extend_schema(
        operation_id="recommendation_rules_retrieve",
        tags=["recommendations"],
        summary="The business rules that serve (newest version)",
        responses={200: RulesOutputSerializer},
    )
    def get(self, request: Request) -> Response:
        return self._answer(selectors.rule_set_current())

    @extend_schema(
        operation_id="recommendation_rules_update",
        tags=["recommendations"],
        summary="Save new business rules (a new version)",
        request=RulesInputSerializer,
        responses={200: RulesOutputSerializer},
    )
    def put(self, request: Request) -> Response:
        data = self.RulesInputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            rule_set = services.rule_set_save(
                rules=data.validated_data["rules"],
                note=data.validated_data.get("note", ""),
                actor=request.user,
            )
        except InvalidRules as error:
            raise ValidationError({"rules": [str(error)]}) from None
        return self._answer(rule_set)
