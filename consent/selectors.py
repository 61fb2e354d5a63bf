"""Reads: the consent gate, consent history, subjects, the privacy queue.

`consent_allows(profile=..., purpose=...)` is THE answer to "may we use this profile for purpose
P now?"; `consent_profiles_allowed(...)` is the same gate for a queryset (campaign recipients,
model training sets). Both read the history directly, so a withdrawal counts at once.

Subjects are resolved to profiles through the identity graph's table, read through the app
registry (`apps.get_model("identity", "Identity")`): consent sits below identity in the layer
contract, so it depends on that table's shape (kind, value, profile), never on identity's code.
"""

from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from django.apps import apps
from django.db import connection, models
from django.db.models import Exists, OuterRef, Q, QuerySet, Subquery

from access.models import AuditLog
from consent.defaults import DEFAULT_PURPOSES, defaults_install
from consent.hashing import SUBJECT_KINDS, identifier_normalize
from consent.models import (
    ConsentCategoryMapping,
    ConsentRecord,
    PrivacyRequest,
    Purpose,
    RequestStatus,
    Suppression,
)
from profiles.models import Profile


class UnknownPurposeError(LookupError):
    pass


def _defaults_restore(code: str) -> bool:
    """A default purpose missing from the table (emptied database) is put back."""
    if code not in {c for c, *_ in DEFAULT_PURPOSES}:
        return False
    defaults_install(Purpose, ConsentCategoryMapping)
    return True


def purpose_get(*, code: str) -> Purpose:
    purpose = Purpose.objects.filter(code=code).first()
    if purpose is None and _defaults_restore(code):
        purpose = Purpose.objects.filter(code=code).first()
    if purpose is None:
        known = ", ".join(Purpose.objects.values_list("code", flat=True))
        raise UnknownPurposeError(f"unknown purpose {code!r}; known: {known}")
    return purpose


def purposes_all() -> list[Purpose]:
    purposes = list(Purpose.objects.order_by("code"))
    if not purposes and _defaults_restore("analytics"):
        purposes = list(Purpose.objects.order_by("code"))
    return purposes


def category_mapping() -> dict[str, str]:
    mapping = dict(ConsentCategoryMapping.objects.values_list("category", "purpose__code"))
    if not mapping and _defaults_restore("analytics"):
        mapping = dict(ConsentCategoryMapping.objects.values_list("category", "purpose__code"))
    return mapping


def _profile_id(profile: Profile | int) -> int:
    return profile if isinstance(profile, int) else profile.pk


def profile_is_suppressed(*, profile: Profile | int) -> bool:
    return Suppression.objects.filter(profile_id=_profile_id(profile)).exists()


def profiles_suppressed(*, profile_ids: Collection[int]) -> set[int]:
    """The suppressed among these profiles (one query)."""
    rows = Suppression.objects.filter(profile_id__in=list(profile_ids))
    return {pk for pk in rows.values_list("profile_id", flat=True) if pk is not None}


def consent_allows(*, profile: Profile | int, purpose: str) -> bool:
    """May we use this profile for `purpose` now? The latest record wins; with none, the
    purpose's default (its legal basis) answers. A suppressed profile is allowed nothing.
    One query, straight from the history: a withdrawal counts at once."""
    profile_id = _profile_id(profile)
    latest = (
        ConsentRecord.objects.filter(profile_id=profile_id, purpose=OuterRef("pk"))
        .order_by("-occurred_at", "-id")
        .values("granted")[:1]
    )
    row = (
        Purpose.objects.filter(code=purpose)
        .annotate(
            _latest=Subquery(latest),
            _suppressed=Exists(Suppression.objects.filter(profile_id=profile_id)),
        )
        .values_list("granted_by_default", "_latest", "_suppressed")
        .first()
    )
    if row is None:
        purpose_get(code=purpose)  # restores a missing default, or raises UnknownPurposeError
        return consent_allows(profile=profile, purpose=purpose)
    default, latest_granted, suppressed = row
    allowed = default if latest_granted is None else latest_granted
    return bool(allowed) and not suppressed


def consent_allows_sql(*, purpose: str, profile_id_sql: str) -> tuple[str, str, list[Any]]:
    """The gate `consent_allows` as two SQL expressions (PostgreSQL) for a caller that asks it
    inside its own query, saving a round trip on a path taken per page view (/v1/decide):
    (allowed, suppressed, params). `profile_id_sql` is the caller's column holding the
    profile id. `allowed` is NULL when the purpose is not in the table: ask `consent_allows`
    then (it restores a missing default). The same reading of the history: the latest record
    wins, else the purpose's default, and a suppressed profile is allowed nothing."""
    records = ConsentRecord._meta.db_table
    purposes = Purpose._meta.db_table
    suppressions = Suppression._meta.db_table
    suppressed = f"EXISTS (SELECT 1 FROM {suppressions} WHERE profile_id = {profile_id_sql})"  # noqa: S608
    allowed = (
        f"(SELECT COALESCE((SELECT r.granted FROM {records} r "  # noqa: S608
        f"WHERE r.profile_id = {profile_id_sql} AND r.purpose_id = pu.id "
        "ORDER BY r.occurred_at DESC, r.id DESC LIMIT 1), pu.granted_by_default) "
        f"AND NOT {suppressed} FROM {purposes} pu WHERE pu.code = %s)"
    )
    return allowed, suppressed, [purpose]


# (profile id, purpose id) -> (granted, occurred_at) of the latest record.
ConsentLatest = dict[tuple[int, int], tuple[bool, datetime]]


def consent_latest(*, profile_ids: Collection[int]) -> ConsentLatest:
    """The latest decision per (profile, purpose) of these profiles, in one query: the same
    history `consent_allows` reads, for a whole pipeline chunk or merge batch at once."""
    latest: ConsentLatest = {}
    if not profile_ids:
        return latest
    if connection.vendor == "postgresql":
        # One row per (profile, purpose), and the ids as one array parameter: this runs for
        # every chunk the pipeline processes.
        table = ConsentRecord._meta.db_table
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT ON (profile_id, purpose_id) profile_id, purpose_id, granted, "  # noqa: S608
                f"occurred_at FROM {table} WHERE profile_id = ANY(%s) "
                "ORDER BY profile_id, purpose_id, occurred_at DESC, id DESC",
                [sorted(profile_ids)],
            )
            rows = cursor.fetchall()
    else:
        rows = list(
            ConsentRecord.objects.filter(profile_id__in=profile_ids)
            .order_by("profile_id", "purpose_id", "-occurred_at", "-id")
            .values_list("profile_id", "purpose_id", "granted", "occurred_at")
        )
    for pid, purpose_id, granted, occurred in rows:
        latest.setdefault((pid, purpose_id), (granted, occurred))
    return latest


def consent_profiles_allowed(*, purpose: str, profiles: QuerySet[Profile]) -> QuerySet[Profile]:
    """The gate for many profiles at once: `profiles` narrowed to those allowing `purpose`."""
    purpose_obj = purpose_get(code=purpose)
    latest = (
        ConsentRecord.objects.filter(profile_id=OuterRef("pk"), purpose=purpose_obj)
        .order_by("-occurred_at", "-id")
        .values("granted")[:1]
    )
    suppressed = Suppression.objects.filter(profile_id=OuterRef("pk"))
    annotated = profiles.annotate(_consent_latest=Subquery(latest)).filter(~Exists(suppressed))
    if purpose_obj.granted_by_default:
        return annotated.filter(Q(_consent_latest=True) | Q(_consent_latest__isnull=True))
    return annotated.filter(_consent_latest=True)


def consent_current_state(*, profile: Profile | int) -> list[dict[str, Any]]:
    """One row per purpose: granted now?, whether from a record or the default, and when."""
    profile_id = _profile_id(profile)
    latest: dict[int, ConsentRecord] = {}
    for record in ConsentRecord.objects.filter(profile_id=profile_id).order_by(
        "purpose_id", "-occurred_at", "-id"
    ):
        latest.setdefault(record.purpose_id, record)
    suppressed = profile_is_suppressed(profile=profile_id)
    state = []
    for purpose in purposes_all():
        decision = latest.get(purpose.pk)
        granted = purpose.granted_by_default if decision is None else decision.granted
        state.append(
            {
                "purpose": purpose.code,
                "granted": granted and not suppressed,
                "by_default": decision is None,
                "suppressed": suppressed,
                "source": decision.source if decision else "",
                "policy_version": decision.policy_version if decision else "",
                "occurred_at": decision.occurred_at if decision else None,
            }
        )
    return state


def consent_records_of_profile(*, profile: Profile | int) -> QuerySet[ConsentRecord]:
    return ConsentRecord.objects.filter(profile_id=_profile_id(profile)).select_related("purpose")


def subject_identifiers(subject: dict[str, Any]) -> dict[str, str]:
    """Normalised {kind: value} of a subject; raises InvalidIdentifierError / ValueError."""
    if not isinstance(subject, dict) or not subject:
        raise ValueError("subject must be an object with one of: " + ", ".join(SUBJECT_KINDS))
    unknown = sorted(set(subject) - set(SUBJECT_KINDS) - {"profile_id"})
    if unknown:
        raise ValueError(
            f"unknown subject field(s) {', '.join(unknown)}; use: {', '.join(SUBJECT_KINDS)}"
        )
    return {
        kind: identifier_normalize(kind, value)
        for kind, value in subject.items()
        if kind != "profile_id"
    }


def _identity_model() -> type[models.Model]:
    return apps.get_model("identity", "Identity")


def subject_profile_ids(*, identifiers: dict[str, str], profile_id: int | None = None) -> list[int]:
    """Every profile holding one of the identifiers, plus the profiles merged into those."""
    Identity = _identity_model()
    query = Q()
    for kind, value in identifiers.items():
        query |= Q(kind=kind, value=value)
    ids: set[int] = set()
    if query:
        ids |= set(Identity._default_manager.filter(query).values_list("profile_id", flat=True))
    if "user_id" in identifiers and not ids:
        # Not yet resolved: events carry the user id before identity resolution ran.
        ids |= set(
            Profile.objects.filter(events__user_id=identifiers["user_id"])
            .values_list("pk", flat=True)
            .distinct()
        )
    if profile_id is not None and Profile.objects.filter(pk=profile_id).exists():
        ids.add(profile_id)
    frontier = set(ids)
    while frontier:  # follow merges both ways: survivors and the duplicates merged into them
        linked = set(
            Profile.objects.filter(Q(merged_into__in=frontier) | Q(merged_profiles__in=frontier))
            .values_list("pk", flat=True)
            .distinct()
        )
        frontier = linked - ids
        ids |= linked
    return sorted(ids)


def identities_of_profiles(
    *, profile_ids: Iterable[int], kinds: Iterable[str] | None = None
) -> list[tuple[str, str, int]]:
    """(kind, value, profile id) of every identity of these profiles (of these kinds)."""
    identities = _identity_model()._default_manager.filter(profile_id__in=list(profile_ids))
    if kinds is not None:
        identities = identities.filter(kind__in=list(kinds))
    return list(identities.values_list("kind", "value", "profile_id"))


def privacy_requests_queue(
    *, status: str | None = None, regulation_type: str | None = None
) -> QuerySet[PrivacyRequest]:
    requests = PrivacyRequest.objects.select_related("assigned_to", "submitted_by")
    if status == "open":
        requests = requests.filter(
            status__in=[
                RequestStatus.NOT_VERIFIED,
                RequestStatus.INITIALIZED,
                RequestStatus.RUNNING,
            ]
        )
    elif status:
        requests = requests.filter(status=status)
    if regulation_type:
        requests = requests.filter(regulation_type=regulation_type)
    return requests.order_by("due_at", "id")


def privacy_requests_due() -> QuerySet[PrivacyRequest]:
    """Verified requests waiting to run, oldest due date first."""
    return PrivacyRequest.objects.filter(
        status=RequestStatus.INITIALIZED, verified_at__isnull=False
    ).order_by("due_at", "id")


def policy_history(*, limit: int = 30) -> QuerySet[AuditLog]:
    """The latest changes to consent purposes and retention policies (not the purges)."""
    return (
        AuditLog.objects.filter(resource__in=["purpose", "retention"])
        .exclude(action="retention.purge")
        .select_related("actor")
        .order_by("-created_at", "-id")[:limit]
    )
