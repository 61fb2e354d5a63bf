"""Admin for configuration (purposes, category mapping, retention). History tables are
read-only here: consent records are append-only."""

from django.contrib import admin

from access.admin import ReadOnlyAdmin
from consent.models import (
    ConsentCategoryMapping,
    ConsentRecord,
    Purpose,
    RetentionPolicy,
)


@admin.register(Purpose)
class PurposeAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "legal_basis", "granted_by_default"]


@admin.register(ConsentCategoryMapping)
class ConsentCategoryMappingAdmin(admin.ModelAdmin):
    list_display = ["category", "purpose"]

    def save_model(self, request, obj, form, change):
        obj.category = obj.category.strip().lower()
        super().save_model(request, obj, form, change)


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ["event_name", "days", "enabled", "last_run_at", "last_purged"]


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["profile_id", "purpose", "granted", "source", "occurred_at"]
