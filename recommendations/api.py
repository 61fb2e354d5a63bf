"""Catalog REST API: `/api/v1/items/...` and `/api/v1/item-imports/...` (routes in
cdp/api_urls.py).

Items are addressed by their external id (the shop's product_id or sku), which is what a
shop's front end and feeds know. Lists answer `{"results": [...], "next": url-or-null}`.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.parsers import MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from access.auth import ResourcePermission
from access.pagination import KeysetPagination
from access.parsers import JSONParser
from access.roles import ADMIN, COMPLIANCE, MARKETER
from recommendations import selectors, services
from recommendations.catalog import AVAILABILITY, InvalidItem
from recommendations.models import Item
from recommendations.tasks import item_import_task


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


class ItemInputSerializer(serializers.Serializer):
    """The body of a create (external_id required) or PATCH (any subset). Validation is the
    catalog's own (recommendations.catalog), shared with the bulk import."""

    external_id = serializers.CharField(help_text="product_id or sku; `product_id` also works.")
    title = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    category = serializers.CharField(required=False)
    brand = serializers.CharField(required=False)
    price = serializers.DecimalField(max_digits=14, decimal_places=2, required=False)
    currency = serializers.CharField(required=False, help_text="ISO 4217, e.g. EUR.")
    image_url = serializers.URLField(required=False)
    url = serializers.URLField(required=False)
    attributes = serializers.JSONField(required=False, help_text="Facet names to values.")
    availability = serializers.ChoiceField(choices=AVAILABILITY, required=False)


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
        price_min = serializers.DecimalField(
            max_digits=14, decimal_places=2, min_value=0, required=False
        )
        price_max = serializers.DecimalField(
            max_digits=14, decimal_places=2, min_value=0, required=False
        )

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
        responses={200: ItemOutputSerializer(many=True)},
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        unknown = set(params) - set(self.FilterSerializer._declared_fields) - self.paging_params
        if unknown:
            known = ", ".join([*self.FilterSerializer._declared_fields, "cursor", "limit"])
            raise ValidationError({name: [f"Unknown filter. Use {known}."] for name in unknown})
        filters = self.FilterSerializer(data=params.dict())
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
        request=ItemInputSerializer,
        responses={
            201: ItemOutputSerializer,
            400: OpenApiResponse(OpenApiTypes.OBJECT, description="What is wrong, by field."),
            409: OpenApiResponse(description="The catalog already has this external id."),
        },
    )
    def post(self, request: Request) -> Response:
        try:
            item = services.item_create(fields=_body(request))
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
        request=ItemInputSerializer(partial=True),
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
            item = services.item_update(item=item, fields=_body(request))
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

    class InputSerializer(serializers.Serializer):
        file = serializers.FileField(help_text="A .csv (with a header row) or .jsonl file.")

    @extend_schema(
        operation_id="item_imports_create",
        tags=["recommendations"],
        summary="Import catalog items from a CSV or JSONL file",
        description="Runs on a worker; poll the answer's id for progress and bad rows.",
        request={"multipart/form-data": InputSerializer},
        responses={202: ItemImportOutputSerializer},
    )
    def post(self, request: Request) -> Response:
        data = self.InputSerializer(data=request.data)
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
