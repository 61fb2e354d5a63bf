"""A suppressed person leaves no decisions (at once, through consent's suppression hook, the
ones left on profiles merged into theirs included) and gets the default content thereafter;
retention purges the decisions nothing relies on any more."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from access.models import AuditLog
from consent.models import RetentionPolicy
from consent.services import (
    privacy_request_create,
    privacy_request_process,
    privacy_request_verify,
    retention_purge,
)
from experiences.models import Decision
from experiences.services import decisions_take, experience_update
from identity.models import Identity
from identity.services import profile_merge
from tests.experiences.conftest import visitor

pytestmark = pytest.mark.django_db
TWO = [
    {"name": "A", "weight": 1, "content": {"title": "A"}},
    {"name": "B", "weight": 1, "content": {"title": "B"}},
]


def decide(profile, now=None):
    return decisions_take(placement_keys=["home_hero"], profile=profile, page={}, now=now)[0]


def test_a_suppression_request_removes_the_persons_decisions_at_once(compliance, make_experience):
    experience = make_experience(allocation="split", variants=TWO)
    person, _ = visitor()
    earlier, _ = visitor()
    Identity.objects.create(kind="email", value="ann@example.com", profile=person)
    # The person's earlier profile, merged into theirs, holds the decision they gave up.
    Decision.objects.create(
        profile=earlier, experience=experience, variant="B", decided_at=timezone.now()
    )
    decide(person)
    profile_merge(survivor=person, duplicate=earlier)
    bystander, _ = visitor()
    decide(bystander)
    assert Decision.objects.filter(profile__in=[person, earlier]).count() == 2

    request = privacy_request_create(
        regulation_type="SUPPRESS_ONLY", subject={"email": "ann@example.com"}
    )
    privacy_request_verify(request=request, actor=compliance, note="checked")
    privacy_request_process(request=request)

    # Gone before the person asks again; other people keep theirs.
    assert not Decision.objects.filter(profile__in=[person, earlier]).exists()
    assert Decision.objects.filter(profile=bystander).count() == 1
    audit = AuditLog.objects.get(action="suppress", profile_id=person.pk)
    assert audit.details["removed"] == {"experiences.Decision": 2}
    # Thereafter: the default content, and no new row.
    answer = decide(person)
    assert (answer.experience, answer.content, answer.decision_id) == (
        None,
        {"title": "Welcome"},
        None,
    )
    assert not Decision.objects.filter(profile=person).exists()


def test_retention_purges_old_decisions_nothing_relies_on(source, make_experience):
    now = timezone.now()
    long_ago = now - dt.timedelta(days=100)
    running = make_experience(name="Running", allocation="split", variants=TWO)
    ended = make_experience(name="Ended", allocation="split", variants=TWO, priority=200)
    gone, _ = visitor(last_seen=long_ago)  # not seen within the window
    active, _ = visitor(last_seen=now)
    newcomer, _ = visitor(last_seen=now)
    merged_away, _ = visitor()  # merged into `active`: its survivor's activity counts
    for profile in (gone, active, merged_away):
        Decision.objects.create(
            profile=profile, experience=running, variant="A", decided_at=long_ago
        )
        Decision.objects.create(profile=profile, experience=ended, variant="B", decided_at=long_ago)
    Decision.objects.create(profile=newcomer, experience=running, variant="B", decided_at=now)
    profile_merge(survivor=active, duplicate=merged_away)
    active.refresh_from_db()
    assert active.last_seen is not None and active.last_seen > now - dt.timedelta(days=1)
    experience_update(experience=ended, fields={"status": "ended", "ends_at": long_ago}, actor=None)
    RetentionPolicy.objects.create(event_name="*", days=30)

    retention_purge(batch_size=1)

    left = set(Decision.objects.values_list("profile_id", "experience_id"))
    assert left == {(profile.pk, running.pk) for profile in (active, merged_away, newcomer)}
    assert AuditLog.objects.filter(
        action="retention.purge", resource="experiences.Decision", details__deleted=4
    ).exists()
    # The active person still sees the arm they had.
    assert decide(active).variant == "A"
    # Run again: nothing more to purge.
    assert retention_purge() == 0
