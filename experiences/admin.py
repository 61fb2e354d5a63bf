"""Admin: placements and experiences are edited through the API and pages (validated there);
the admin shows them and the decisions read-only."""

from django.contrib import admin

from access.admin import ReadOnlyAdmin
from experiences.models import Decision, Experience, Placement


@admin.register(Placement)
class PlacementAdmin(ReadOnlyAdmin):
    list_display = ["key", "name", "updated_at"]


@admin.register(Experience)
class ExperienceAdmin(ReadOnlyAdmin):
    list_display = ["name", "placement", "status", "priority", "allocation", "updated_at"]
    list_filter = ["status", "allocation"]


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    list_display = ["experience", "profile_id", "variant", "in_holdout", "decided_at"]
