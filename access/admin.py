"""Admin for the audit log: read-only, as its rows are append-only."""

from django.contrib import admin

from access.models import AuditLog


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(AuditLog)
class AuditLogAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "actor_label", "action", "resource", "resource_id", "profile_id"]
