"""A shop with a catalog and people in two taste groups, built through the real pipeline
(events -> profiles -> interactions), and a trained model serving it."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from cdp import pipeline
from profiles.models import Profile
from recommendations.models import ModelRun
from recommendations.services import item_create, model_train, model_train_request
from tests.identity.factories import event_make

GROUPS = {"A": ("a", "Garden > Tools", "Spade Co"), "B": ("b", "Kitchen > Pans", "Pan Co")}


@dataclass
class Shop:
    people: dict[str, Profile] = field(default_factory=dict)  # user id -> profile
    bought: dict[str, set[str]] = field(default_factory=dict)  # user id -> items


def catalog() -> None:
    for group, (prefix, category, brand) in GROUPS.items():
        for i in range(12):
            word = "spade rake garden" if group == "A" else "pan pot kitchen"
            item_create(
                fields={
                    "external_id": f"{prefix}{i}",
                    "title": f"{word.split()[0].title()} {i}",
                    "description": f"A {word} item",
                    "category": category,
                    "brand": brand,
                    "price": str(10 + i),
                    "currency": "EUR",
                }
            )


def buy(source, user_id: str, items: list[str], days_ago: float) -> None:
    event = event_make(
        source,
        event="Order Completed",
        user_id=user_id,
        at=timezone.now() - timedelta(days=days_ago),
        properties={"products": [{"product_id": item, "quantity": 1} for item in items]},
    )
    pipeline.events_process(event_ids=[event.pk])


def build_shop(source, people: int = 40, seed: int = 3) -> Shop:
    rng = random.Random(seed)
    catalog()
    shop = Shop()
    for person in range(people):
        group = "A" if person % 2 == 0 else "B"
        prefix = GROUPS[group][0]
        user_id = f"user-{group}-{person}"
        items = [f"{prefix}0", *rng.sample([f"{prefix}{i}" for i in range(1, 12)], 5)]
        for item in items:
            buy(source, user_id, [item], rng.uniform(0, 80))
        shop.bought[user_id] = set(items)
    for profile in Profile.objects.filter(merged_into__isnull=True).prefetch_related("identities"):
        user_ids = [i.value for i in profile.identities.all() if i.kind == "user_id"]
        if user_ids:
            shop.people[user_ids[0]] = profile
    return shop


def train(kind: str = "ease", **params) -> ModelRun:
    return model_train(run=model_train_request(kind=kind, params=params, actor=None))


@pytest.fixture
def shop(source) -> Shop:
    return build_shop(source)


@pytest.fixture
def served(shop) -> Shop:
    run = train()
    assert run.is_serving, (run.status, run.message, run.decision_reason)
    return shop
