"""Template context every page shares."""

from typing import Any

from django.http import HttpRequest

from profiles.services import workspace_currency


def workspace_currency_context(request: HttpRequest) -> dict[str, Any]:
    """`currency`: the code revenue is shown in (WORKSPACE_CURRENCY)."""
    return {"currency": workspace_currency()}
