"""Admin: channels and campaigns are edited through the API and pages (validated there); the
admin shows them and the journey and delivery records read-only."""

from django.contrib import admin

from access.admin import ReadOnlyAdmin
from campaigns.models import Campaign, CampaignVersion, Channel, Delivery, Entry


@admin.register(Channel)
class ChannelAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "is_active", "disabled_reason", "created_at"]
    exclude = ["secret_salt"]


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyAdmin):
    list_display = ["name", "kind", "status", "created_at"]
    list_filter = ["status", "kind"]


@admin.register(CampaignVersion)
class CampaignVersionAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "number", "created_at"]


@admin.register(Entry)
class EntryAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "profile_id", "number", "status", "exit_reason", "due_at"]
    list_filter = ["status"]


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ["campaign", "profile_id", "step", "status", "skip_reason", "created_at"]
    list_filter = ["status", "skip_reason"]
