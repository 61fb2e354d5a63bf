"""Identity changes that matter are audited with their actor: unmerges, rescans, review
decisions and rule changes."""

import pytest

from access.models import AuditLog
from identity.models import CandidateStatus, MatchCandidate
from identity.services import (
    candidate_decide,
    match_settings_update,
    profile_unmerge,
    profiles_merge,
    rescan_job_create,
)
from tests.identity.factories import profiles_store

pytestmark = pytest.mark.django_db


def _actions() -> list[str]:
    return list(AuditLog.objects.order_by("id").values_list("action", flat=True))


def test_unmerge_rescan_decision_and_rules_each_write_an_audit_row(admin_user):
    a, b, c, d = profiles_store([{"name": n} for n in "abcd"])
    record = profiles_merge(first=a, second=b, actor=admin_user, reason="test")
    profile_unmerge(merge_record=record, actor=admin_user)
    rescan_job_create(full=True, actor=admin_user)
    candidate = MatchCandidate.objects.create(
        profile_a=c, profile_b=d, probability=0.9, weight=5.0, status=CandidateStatus.PENDING
    )
    candidate_decide(candidate=candidate, merge=False, actor=admin_user)
    match_settings_update(actor=admin_user, merge_threshold=0.99)
    assert [a for a in _actions() if a.startswith("identity.")] == [
        "identity.unmerge",
        "identity.rescan",
        "identity.decide",
        "identity.rules",
    ]
    assert set(
        AuditLog.objects.filter(action__startswith="identity.").values_list("actor", flat=True)
    ) == {admin_user.pk}
    decided = AuditLog.objects.get(action="identity.decide")
    assert decided.details["decision"] == "not the same person"
    assert AuditLog.objects.get(action="identity.rules").details == {"changed": ["merge_threshold"]}
