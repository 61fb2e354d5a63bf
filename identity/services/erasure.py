"""Identity's part of an erasure, registered as a consent erasure hook (see `IdentityConfig`)."""

from django.db.models import Q

from identity.models import Identity, MatchCandidate, MatchKey, MergeRecord, NotSamePerson


def identities_erase(*, profile_ids: list[int], identifiers: list[str]) -> dict[str, int]:
    """Delete what identity holds about these profiles: their identities and match keys, the
    merge records that hold their snapshots, and the suggested or refused pairs they are in.
    Every identity of the subject belongs to one of its profiles, so `identifiers` are not
    needed here. Returns rows deleted per model label."""
    removed: dict[str, int] = {}
    # Merge records first: they point at the candidates that suggested them.
    for rows in (
        MergeRecord.objects.filter(
            Q(survivor_id__in=profile_ids) | Q(duplicate_id__in=profile_ids)
        ),
        MatchCandidate.objects.filter(
            Q(profile_a_id__in=profile_ids) | Q(profile_b_id__in=profile_ids)
        ),
        NotSamePerson.objects.filter(
            Q(profile_a_id__in=profile_ids) | Q(profile_b_id__in=profile_ids)
        ),
        MatchKey.objects.filter(profile_id__in=profile_ids),
        Identity.objects.filter(profile_id__in=profile_ids),
    ):
        _, per_model = rows.delete()
        for label, count in per_model.items():
            if count:
                removed[label] = removed.get(label, 0) + count
    return removed
