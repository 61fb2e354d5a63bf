"""Business rules: each change is a new version (recommendations.rules), audited."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max

from access.services import audit_record
from recommendations import cache
from recommendations.models import RuleSet
from recommendations.rules import rules_validate


def rule_set_save(*, rules: Any, note: str = "", actor: Any) -> RuleSet:
    """Save `rules` (validated here; raises rules.InvalidRules) as the next version."""
    cleaned = rules_validate(rules)
    for _ in range(3):  # two editors at once: the loser takes the next number
        try:
            with transaction.atomic():
                latest = RuleSet.objects.aggregate(v=Max("version"))["v"] or 0
                rule_set = RuleSet.objects.create(
                    version=latest + 1,
                    rules=cleaned,
                    note=note[:300],
                    created_by=actor if getattr(actor, "pk", None) else None,
                )
            break
        except IntegrityError:
            continue
    else:
        raise RuntimeError("could not number the new rules version")
    audit_record(
        actor=actor,
        action="rules",
        resource="recommendation_rules",
        resource_id=rule_set.version,
        details={"keys": sorted(cleaned)},
    )
    transaction.on_commit(cache.all_invalidate)
    return rule_set
