"""Builders for experiences tests: a placement with a content schema, visitors known by an
anonymous id, a segment whose membership is computed by the segments app."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

import pytest

from experiences.models import Experience, Placement
from experiences.services import experience_create, placement_create
from identity.models import Identity
from profiles.models import Profile

HERO_SCHEMA = {
    "type": "object",
    "required": ["title"],
    "additionalProperties": False,
    "properties": {
        "title": {"type": "string", "maxLength": 200},
        "body": {"type": "string"},
        "link": {"type": "string"},
    },
}
_visitors = itertools.count(1)


@pytest.fixture
def placement(db) -> Placement:
    return placement_create(
        fields={
            "key": "home_hero",
            "name": "Home hero",
            "content_schema": HERO_SCHEMA,
            "default_content": {"title": "Welcome"},
        },
        actor=None,
    )


def visitor(*, traits: dict | None = None, **columns: Any) -> tuple[Profile, str]:
    """A profile known by an anonymous id (returned with it)."""
    profile = Profile.objects.create(traits=traits or {}, **columns)
    anonymous_id = f"anon-{next(_visitors)}"
    Identity.objects.create(kind="anonymous_id", value=anonymous_id, profile=profile)
    return profile, anonymous_id


@pytest.fixture
def make_experience(placement) -> Callable[..., Experience]:
    def make(**fields: Any) -> Experience:
        values: dict[str, Any] = {
            "placement": placement,
            "name": "Spring sale",
            "status": "active",
            "variants": [{"name": "A", "content": {"title": "Sale"}}],
            "allocation": "single",
        }
        values.update(fields)
        return experience_create(fields=values, actor=None)

    return make
