"""Segment create, edit and archive are audited with their actor."""

import pytest

from access.models import AuditLog
from segments import services

pytestmark = pytest.mark.django_db

EVERYONE = {"computed": "event_count", "op": "gte", "value": 0}


def test_segment_create_edit_and_archive_are_audited(marketer):
    segment = services.segment_create(name="Buyers", definition=EVERYONE, actor=marketer)
    services.segment_update(segment=segment, name="Big buyers", actor=marketer)
    services.segment_archive(segment=segment, actor=marketer)
    rows = AuditLog.objects.filter(resource="segments").order_by("id")
    assert [r.action for r in rows] == ["segment.create", "segment.update", "segment.archive"]
    assert {r.actor_id for r in rows} == {marketer.pk}
    assert rows[1].details == {"name": "Big buyers", "definition_changed": False}
