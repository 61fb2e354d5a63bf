"""Admin for configuration (purposes, category mapping, retention). History tables are
read-only here: consent records and audit rows are append-only."""

from django.contrib import admin

from consent.models import (
    AuditLog,
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


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyAdmin):
    list_display = ["profile_id", "purpose", "granted", "source", "occurred_at"]


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_label", "action", "resource", "resource_id", "profile_id"]
