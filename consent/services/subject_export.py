"""Subject-access export (ACCESS requests): everything we hold about a subject, as one JSON
file.

The file holds the profiles (traits, context, computed features) and, for every model with a
foreign key to `profiles.Profile` (identities, events, consents, segment memberships,
deliveries and whatever later parts add), its rows for those profiles. Rows are streamed to
disk so a profile with a million events does not need a million objects in memory.
"""

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.apps import apps
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from consent.models import PrivacyRequest
from profiles.models import Event, Profile

EXPORT_FORMAT = 1


def _dumps(value: Any) -> str:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)


def _profile_relations() -> list[tuple[type[models.Model], str]]:
    """(model, field name) for every foreign key (many-to-many through tables included)
    pointing at Profile, found through the app registry: new tables are exported unasked."""
    found = []
    for model in apps.get_models(include_auto_created=True):
        if model is Profile or not model._meta.managed:
            continue
        for f in model._meta.local_fields:
            if f.is_relation and f.related_model is Profile:
                found.append((model, f.name))
    return found


def subject_export_build(
    *,
    request: PrivacyRequest,
    profile_ids: list[int],
    progress: Callable[[int], None] = lambda pct: None,
) -> str:
    """Write the export; returns its path relative to MEDIA_ROOT."""
    folder = Path(settings.MEDIA_ROOT) / settings.PRIVACY_EXPORT_DIR
    folder.mkdir(parents=True, exist_ok=True)
    relative = f"{settings.PRIVACY_EXPORT_DIR}/privacy-{request.pk}-{secrets.token_hex(8)}.json"
    relations = sorted(_profile_relations(), key=lambda r: r[0]._meta.label)
    total_events = Event.objects.filter(profile_id__in=profile_ids).count() if profile_ids else 0
    steps = len(relations) + 1
    done_steps = 0
    with open(Path(settings.MEDIA_ROOT) / relative, "w", encoding="utf-8") as out:
        out.write("{\n")
        out.write(f'"format": {EXPORT_FORMAT},\n')
        out.write(f'"request_id": {request.pk},\n')
        out.write(f'"regulation_type": {_dumps(request.regulation_type)},\n')
        out.write(f'"generated_at": {_dumps(timezone.now())},\n')
        profiles = list(Profile.objects.filter(pk__in=profile_ids).values())
        out.write(f'"profiles": {_dumps(profiles)},\n')
        done_steps += 1
        progress(int(100 * done_steps / steps))
        out.write('"related": {')
        first_model = True
        for model, field_name in relations:
            label = f"{model._meta.label}.{field_name}"
            out.write(("" if first_model else ",") + f"\n{_dumps(label)}: [")
            first_model = False
            rows = (
                model._base_manager.filter(**{f"{field_name}__in": profile_ids})
                .order_by("pk")
                .values()
            )
            first_row = True
            for i, row in enumerate(rows.iterator(chunk_size=2000)):
                out.write(("" if first_row else ",") + "\n" + _dumps(row))
                first_row = False
                if model is Event and total_events and i % 5000 == 0:
                    fraction = (done_steps + i / total_events) / steps
                    progress(min(99, int(100 * fraction)))
            out.write("]")
            done_steps += 1
            progress(min(99, int(100 * done_steps / steps)))
        out.write("\n}\n}\n")
    return relative
