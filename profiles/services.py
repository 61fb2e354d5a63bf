"""Profile writes: claiming accepted events, applying them to profiles, computed features.

How an event changes its profile (all in event time, so the result does not depend on the
order in which workers happen to process events):

- **traits**: `identify` traits (top level and `context.traits`) set profile traits; each trait
  remembers the event time that set it in `Profile.trait_timestamps`, and an older event never
  overwrites a newer value. `group` traits go under `traits["groups"][<groupId>]` (timestamped
  per group as `"groups.<groupId>"`).
- **context**: the last known device, OS, browser (parsed from `context.userAgent`), locale,
  timezone, IP, location, campaign, referrer, app, library and session id, taken from the most
  recent event; a key an event lacks keeps its earlier value.
- **computed features** (columns, so segments can index them): first/last seen, event count,
  session count (a new session starts when `context.sessionId` changes, or, when events carry
  none, after 30 minutes without events), and from `Order Completed`: order count, revenue
  (`properties.revenue`, else `total`, else the sum of `products[].price * quantity`), first and
  last order time. Bot-flagged events are stored and linked to their profile but change neither
  computed features nor context.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import orjson
from django.db import connection, models, transaction
from django.db.models import Case, JSONField, Q, Value, When
from django.db.models.base import ModelState
from django.db.models.fields.json import KeyTransform
from django.utils import timezone

from access.services import audit_record_request
from profiles.models import Event, EventType, Profile, QuarantinedMessage

logger = logging.getLogger(__name__)

SESSION_GAP = timedelta(minutes=30)
ORDER_COMPLETED = "Order Completed"
# Amounts beyond this are not real orders (and would overflow the revenue column): ignored.
MAX_ORDER_AMOUNT = Decimal("10000000000")
CENTS = Decimal("0.01")

COMPUTED_FIELDS = [
    "first_seen",
    "last_seen",
    "event_count",
    "session_count",
    "order_count",
    "revenue",
    "first_order_at",
    "last_order_at",
]
SAVED_FIELDS = ["traits", "trait_timestamps", "context", *COMPUTED_FIELDS, "updated_at"]


# --- Event time as trait timestamps -------------------------------------------------------


def trait_time(moment: datetime) -> str:
    """The fixed-width UTC text stored in `Profile.trait_timestamps`; it sorts as time does.

    Any code that sets traits (the profile API too) must stamp them with this format.
    """
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _traits_set(profile: Profile, traits: Mapping[str, Any], at: str) -> None:
    for name, value in traits.items():
        if name == "groups":
            continue  # reserved for group traits
        previous = profile.trait_timestamps.get(name)
        if previous is None or at >= previous:
            profile.traits[name] = value
            profile.trait_timestamps[name] = at


def _group_traits_set(profile: Profile, group_id: str, traits: Mapping[str, Any], at: str) -> None:
    stamp = f"groups.{group_id}"
    previous = profile.trait_timestamps.get(stamp)
    if previous is not None and at < previous:
        return
    groups = profile.traits.get("groups")
    if not isinstance(groups, dict):
        groups = {}
    groups[group_id] = dict(traits)
    profile.traits["groups"] = groups
    profile.trait_timestamps[stamp] = at


def profile_traits_merge(*, into: Profile, other: Profile) -> None:
    """Merge `other`'s traits into `into`, trait by trait: the more recently set value wins."""
    for name, value in other.traits.items():
        if name == "groups" and isinstance(value, dict):
            for group_id, group_traits in value.items():
                stamp = f"groups.{group_id}"
                theirs = other.trait_timestamps.get(stamp, "")
                ours = into.trait_timestamps.get(stamp)
                if ours is None or theirs > ours:
                    groups = into.traits.get("groups")
                    groups = groups if isinstance(groups, dict) else {}
                    groups[group_id] = group_traits
                    into.traits["groups"] = groups
                    into.trait_timestamps[stamp] = theirs
            continue
        theirs = other.trait_timestamps.get(name, "")
        ours = into.trait_timestamps.get(name)
        if name not in into.traits or (ours is not None and theirs > ours):
            into.traits[name] = value
            into.trait_timestamps[name] = theirs


# --- Context ------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _user_agent(ua: str) -> dict[str, Any]:
    from user_agents import parse

    parsed = parse(ua)
    if parsed.is_mobile:
        device_type = "mobile"
    elif parsed.is_tablet:
        device_type = "tablet"
    elif parsed.is_bot:
        device_type = "bot"
    else:
        device_type = "desktop"
    return {
        "browser": {"name": parsed.browser.family, "version": parsed.browser.version_string},
        "os": {"name": parsed.os.family, "version": parsed.os.version_string},
        "device_type": device_type,
    }


_CONTEXT_OBJECTS = ("device", "os", "app", "location", "campaign", "referrer", "library")
_CONTEXT_TEXTS = {"locale": "locale", "timezone": "timezone", "ip": "ip"}


def _event_context(context: Mapping[str, Any], at: str) -> dict[str, Any]:
    """What one event's `context` tells about the person's current device and whereabouts."""
    found: dict[str, Any] = {}
    for name in _CONTEXT_OBJECTS:
        value = context.get(name)
        if isinstance(value, dict) and value:
            found[name] = value
    for name, key in _CONTEXT_TEXTS.items():
        value = context.get(name)
        if isinstance(value, str) and value:
            found[key] = value
    ua = context.get("userAgent")
    if isinstance(ua, str) and ua:
        parsed = _user_agent(ua[:1024])
        found["user_agent"] = ua
        found["browser"] = parsed["browser"]
        found.setdefault("os", parsed["os"])
        device = dict(found.get("device") or {})
        device.setdefault("type", parsed["device_type"])
        found["device"] = device
    page = context.get("page")
    if isinstance(page, dict) and isinstance(page.get("referrer"), str) and page["referrer"]:
        found.setdefault("referrer", {"url": page["referrer"]})
    found["session_id"] = _session_id(context)
    found["updated_at"] = at
    return found


def _session_id(context: Mapping[str, Any]) -> str | None:
    value = context.get("sessionId")
    if value is None or isinstance(value, bool | dict | list) or value == "":
        return None
    return str(value)


# --- Computed features --------------------------------------------------------------------


def session_starts(
    *, previous_at: datetime | None, previous_session: str | None, at: datetime, session: str | None
) -> bool:
    """Whether an event at `at` starts a new session after an event at `previous_at`."""
    if previous_at is None:
        return True
    if session is not None and previous_session is not None:
        return session != previous_session
    return at - previous_at > SESSION_GAP


def sessions_count(timeline: Iterable[tuple[datetime, str | None]]) -> int:
    """Sessions in a time-ordered sequence of (event time, session id or None)."""
    count = 0
    previous_at: datetime | None = None
    previous_session: str | None = None
    for at, session in timeline:
        if session_starts(
            previous_at=previous_at, previous_session=previous_session, at=at, session=session
        ):
            count += 1
        previous_at, previous_session = at, session
    return count


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite() or abs(amount) >= MAX_ORDER_AMOUNT:
        return None
    return amount


def order_revenue(properties: Mapping[str, Any]) -> Decimal:
    """Revenue of an `Order Completed`: `revenue`, else `total`, else the products' sum."""
    for key in ("revenue", "total"):
        amount = _amount(properties.get(key))
        if amount is not None:
            return amount.quantize(CENTS)
    total = Decimal(0)
    products = properties.get("products")
    if isinstance(products, list):
        for product in products:
            if not isinstance(product, dict):
                continue
            price = _amount(product.get("price"))
            quantity = _amount(product.get("quantity", 1))
            if price is not None and quantity is not None:
                total += price * quantity
    if abs(total) >= MAX_ORDER_AMOUNT:
        return Decimal(0)
    return total.quantize(CENTS)


def _is_order(event: Event) -> bool:
    return event.type == EventType.TRACK and event.event == ORDER_COMPLETED


def profile_apply_events(*, profile: Profile, events: Sequence[Event]) -> bool:
    """Apply one profile's new events to it in memory (the caller saves with `profiles_save`).

    Events are applied in event-time order. Returns True when an event arrived late (older
    than the profile's last seen), which makes the incremental session count unreliable: the
    caller then recounts sessions from the timeline with `profiles_sessions_recount`.
    """
    late = False
    for event in sorted(events, key=lambda e: (e.timestamp, e.pk)):
        at = trait_time(event.timestamp)
        context = event.context if isinstance(event.context, dict) else {}
        traits = event.traits if isinstance(event.traits, dict) else {}
        if event.type == EventType.IDENTIFY:
            context_traits = context.get("traits")
            if isinstance(context_traits, dict):
                _traits_set(profile, context_traits, at)
            _traits_set(profile, traits, at)
        elif event.type == EventType.GROUP:
            group_id = getattr(event, "group_id", None)
            if group_id:
                _group_traits_set(profile, str(group_id), traits, at)
        if event.is_bot:
            continue

        moment = event.timestamp
        if profile.last_seen is None or moment >= profile.last_seen:
            session = _session_id(context)
            if session_starts(
                previous_at=profile.last_seen,
                previous_session=profile.context.get("session_id"),
                at=moment,
                session=session,
            ):
                profile.session_count += 1
            profile.context.update(_event_context(context, at))
            profile.last_seen = moment
        else:
            late = True
        if profile.first_seen is None or moment < profile.first_seen:
            profile.first_seen = moment
        profile.event_count += 1
        if _is_order(event):
            props = event.properties if isinstance(event.properties, dict) else {}
            profile.order_count += 1
            profile.revenue = Decimal(profile.revenue) + order_revenue(props)
            if profile.first_order_at is None or moment < profile.first_order_at:
                profile.first_order_at = moment
            if profile.last_order_at is None or moment > profile.last_order_at:
                profile.last_order_at = moment
    return late


def profiles_sessions_recount(*, profiles: Sequence[Profile]) -> None:
    """Recount the sessions of these profiles from their stored timelines (one query)."""
    if not profiles:
        return
    by_id = {p.pk: p for p in profiles}
    for profile in profiles:
        profile.session_count = 0
    rows = (
        Event.objects.filter(profile_id__in=list(by_id), is_bot=False)
        .annotate(session=KeyTransform("sessionId", "context"))
        .order_by("profile_id", "timestamp", "id")
        .values_list("profile_id", "timestamp", "session")
    )
    current: int | None = None
    timeline: list[tuple[datetime, str | None]] = []
    for profile_id, moment, session in rows.iterator(chunk_size=5000):
        if profile_id != current:
            if current is not None:
                by_id[current].session_count = sessions_count(timeline)
            current, timeline = profile_id, []
        if session is None or isinstance(session, bool | dict | list) or session == "":
            session = None
        timeline.append((moment, None if session is None else str(session)))
    if current is not None:
        by_id[current].session_count = sessions_count(timeline)


def profiles_save(*, profiles: Sequence[Profile]) -> None:
    """Save traits, context and computed features of many profiles in one statement."""
    if not profiles:
        return
    now = timezone.now()
    for profile in profiles:
        profile.updated_at = now
    if connection.vendor == "postgresql":
        _profiles_save_postgres(profiles)
    else:
        Profile.objects.bulk_update(profiles, SAVED_FIELDS)


def _profiles_save_postgres(profiles: Sequence[Profile]) -> None:
    from psycopg2.extras import Json

    table = Profile._meta.db_table
    columns = {
        "id": ("bigint", [p.pk for p in profiles]),
        "traits": ("jsonb", [Json(p.traits) for p in profiles]),
        "trait_timestamps": ("jsonb", [Json(p.trait_timestamps) for p in profiles]),
        "context": ("jsonb", [Json(p.context) for p in profiles]),
        "first_seen": ("timestamptz", [p.first_seen for p in profiles]),
        "last_seen": ("timestamptz", [p.last_seen for p in profiles]),
        "event_count": ("integer", [p.event_count for p in profiles]),
        "session_count": ("integer", [p.session_count for p in profiles]),
        "order_count": ("integer", [p.order_count for p in profiles]),
        "revenue": ("numeric", [Decimal(p.revenue) for p in profiles]),
        "first_order_at": ("timestamptz", [p.first_order_at for p in profiles]),
        "last_order_at": ("timestamptz", [p.last_order_at for p in profiles]),
        "updated_at": ("timestamptz", [p.updated_at for p in profiles]),
    }
    names = list(columns)
    unnest = ", ".join(f"%s::{columns[name][0]}[]" for name in names)
    assignments = ", ".join(f"{name} = u.{name}" for name in names if name != "id")
    sql = (
        f"UPDATE {table} AS p SET {assignments} "  # noqa: S608 - names are ours, values bound
        f"FROM unnest({unnest}) AS u({', '.join(names)}) WHERE p.id = u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [columns[name][1] for name in names])


def profile_access_record(*, request: Any, profile: Profile, action: str, route: str) -> None:
    """Audit one staff or API read ("view") or change of a profile, by id only: the audit log
    never holds an identifier, so an erasure need not touch it."""
    audit_record_request(
        request=request,
        action=action,
        resource="profile",
        resource_id=profile.pk,
        profile_id=profile.pk,
        details={"route": route, "method": request.method},
    )


def profile_traits_patch(*, profile: Profile, changes: dict[str, Any]) -> Profile:
    """Merge `changes` into a profile's traits; a None value deletes that key.

    Every key touched (set or deleted) gets the current time in `trait_timestamps`, so an
    event older than this edit that arrives later does not undo it. The row is locked while
    it changes, so a pipeline worker updating the same profile cannot lose this edit.
    """
    now = trait_time(timezone.now())
    with transaction.atomic():
        locked = Profile.objects.select_for_update().get(pk=profile.pk)
        traits = dict(locked.traits or {})
        timestamps = dict(locked.trait_timestamps or {})
        for key, value in changes.items():
            if value is None:
                traits.pop(key, None)
            else:
                traits[key] = value
            timestamps[key] = now
        locked.traits = traits
        locked.trait_timestamps = timestamps
        locked.save(update_fields=["traits", "trait_timestamps", "updated_at"])
    profile.traits = locked.traits
    profile.trait_timestamps = locked.trait_timestamps
    profile.updated_at = locked.updated_at
    return profile


# --- Claiming and marking events ----------------------------------------------------------


def events_claim(*, event_ids: Sequence[int], fill_to: int = 0) -> list[Event]:
    """Lock the given events that are still unprocessed, skipping ones another worker holds.

    With `fill_to`, also claim the oldest other pending events until there are that many: many
    small tasks (one per ingestion request) then coalesce into a few large transactions, and
    the tasks whose events were taken find nothing left to do.

    Call inside a transaction; the claim lasts until it ends, and `events_mark_processed` makes
    it permanent. Events come in event-time order, with `group_id` and `previous_id` set from
    the message. Every field is loaded but `payload` and `violations` (deferred: a stage that
    needs them reads them for the whole chunk in one query, never one per event).
    """
    ids = list(event_ids)
    if connection.vendor == "postgresql":
        return _events_lock_postgres(ids, fill=max(fill_to - len(ids), 0))
    if fill_to > len(ids):
        ids += list(
            Event.objects.select_for_update(skip_locked=True)
            .filter(processed_at__isnull=True)
            .exclude(pk__in=ids)
            .order_by("id")
            .values_list("id", flat=True)[: fill_to - len(ids)]
        )
    events = list(
        Event.objects.select_for_update(skip_locked=True)
        .filter(pk__in=ids, processed_at__isnull=True)
        .defer("payload", "violations")
        .order_by("timestamp", "id")
    )
    found = dict(
        Event.objects.filter(
            pk__in=[e.pk for e in events if e.type in (EventType.GROUP, EventType.ALIAS)]
        ).values_list("pk", "payload")
    )
    for event in events:
        payload = found.get(event.pk)
        payload = payload if isinstance(payload, dict) else {}
        event.group_id = payload.get("groupId") if event.type == EventType.GROUP else None
        event.previous_id = payload.get("previousId") if event.type == EventType.ALIAS else None
    return events


# The lowest event id this process's next fill may take: the fill walks the pending index in
# id order, and the entries of events processed since the last vacuum are still in it (dead
# rows, each checked in the table) until vacuum runs, which a long transaction anywhere can
# hold back. Starting past what this process last took keeps the walk short. Events below it
# that are still pending (held by a worker that then failed) are claimed by their own task or
# by the pending-events safety net.
_fill_floor = 0


def _fill_floor_raise(to: int) -> None:
    global _fill_floor
    _fill_floor = max(_fill_floor, to)


_LOCKED_FIELDS = [
    f for f in Event._meta.concrete_fields if f.attname not in ("payload", "violations")
]


def _events_lock_postgres(ids: list[int], *, fill: int) -> list[Event]:
    """The hot path of processing: one statement, and instances built without the ORM's
    per-row machinery (on a chunk of events it costs more than the query itself)."""
    fields = _LOCKED_FIELDS
    names = [field.attname for field in fields]
    json_at = [i for i, field in enumerate(fields) if isinstance(field, JSONField)]
    table = Event._meta.db_table
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    # Bitmap scans are off for this statement: statistics lag behind a backlog (one that built
    # up since the last analyze looks like a few rows), and the planner would then read and
    # sort every pending row for each chunk instead of walking the pending index in id order.
    sql = (
        "SET LOCAL enable_bitmapscan = off; "  # noqa: S608 - names are ours, values bound
        f"WITH filled AS (SELECT id FROM {table} "
        "WHERE processed_at IS NULL AND id >= %s AND id <> ALL(%s::bigint[]) "
        "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) "
        f"SELECT {columns}, CASE type WHEN 'group' THEN payload -> 'groupId' "
        "WHEN 'alias' THEN payload -> 'previousId' END "
        f"FROM {table} WHERE id = ANY(%s::bigint[] || ARRAY(SELECT id FROM filled)) "
        "AND processed_at IS NULL ORDER BY timestamp, id FOR UPDATE SKIP LOCKED"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [_fill_floor, ids, fill, ids])
        rows = cursor.fetchall()
        cursor.execute("RESET enable_bitmapscan")
    given = set(ids)
    filled = [row[0] for row in rows if row[0] not in given]
    if filled:
        # Only once this chunk commits: if it rolls back, its events are pending again and the
        # retry must be able to take them.
        top = max(filled) + 1
        transaction.on_commit(lambda: _fill_floor_raise(top))
    events = []
    for row in rows:
        values = list(row)
        for index in json_at:
            values[index] = _json_loads(values[index])
        linked = _json_loads(values.pop())  # groupId or previousId
        event = Event.__new__(Event)
        event._state = ModelState()
        event._state.adding = False
        event._state.db = connection.alias
        event.__dict__.update(zip(names, values, strict=True))
        event.group_id = linked if event.type == EventType.GROUP else None
        event.previous_id = linked if event.type == EventType.ALIAS else None
        events.append(event)
    return events


def _json_loads(value: Any) -> Any:
    if not isinstance(value, str | bytes):
        return value
    try:
        return orjson.loads(value)
    except orjson.JSONDecodeError:  # numbers beyond a double (ingestion never stores them)
        return json.loads(value)


def events_mark_processed(*, events: Sequence[Event], rewritten: Sequence[Event] = ()) -> None:
    """Store each event's resolved profile and mark it processed, in one statement.

    `rewritten` (some of `events`) also have their properties, context and payload saved, in
    the same write: a stage that rewrote them in memory (consent strips events) leaves the
    saving to this, so that each event row is written once.
    """
    if not events:
        return
    now = timezone.now()
    for event in events:
        event.processed_at = now
    if connection.vendor != "postgresql":
        Event.objects.bulk_update(events, ["profile", "processed_at"])
        events_content_save(events=rewritten)
        return
    from psycopg2.extras import Json

    content = {e.pk: e for e in rewritten}

    def column(name: str) -> list[Json | None]:
        return [Json(getattr(content[e.pk], name)) if e.pk in content else None for e in events]

    sql = (
        f"UPDATE {Event._meta.db_table} AS e "  # noqa: S608 - table name is ours
        "SET profile_id = u.profile_id, processed_at = %s, "
        "properties = COALESCE(u.properties, e.properties), "
        "context = COALESCE(u.context, e.context), payload = COALESCE(u.payload, e.payload) "
        "FROM unnest(%s::bigint[], %s::bigint[], %s::jsonb[], %s::jsonb[], %s::jsonb[]) "
        "AS u(id, profile_id, properties, context, payload) WHERE e.id = u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                now,
                [e.pk for e in events],
                [e.profile_id for e in events],
                column("properties"),
                column("context"),
                column("payload"),
            ],
        )


def events_content_save(*, events: Sequence[Event]) -> None:
    """Save the properties, context and payload of events rewritten in memory (consent strips
    them), in one statement."""
    if not events:
        return
    if connection.vendor != "postgresql":
        Event.objects.bulk_update(events, ["properties", "context", "payload"], batch_size=500)
        return
    from psycopg2.extras import Json

    sql = (
        f"UPDATE {Event._meta.db_table} AS e "  # noqa: S608 - table name is ours
        "SET properties = u.properties, context = u.context, payload = u.payload "
        "FROM unnest(%s::bigint[], %s::jsonb[], %s::jsonb[], %s::jsonb[]) "
        "AS u(id, properties, context, payload) WHERE e.id = u.id"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            sql,
            [
                [e.pk for e in events],
                [Json(e.properties) for e in events],
                [Json(e.context) for e in events],
                [Json(e.payload) for e in events],
            ],
        )


def events_pending_ids(*, older_than: timedelta, limit: int) -> list[int]:
    """Ids of accepted events still unprocessed after `older_than` (their task was lost)."""
    cutoff = timezone.now() - older_than
    return list(
        Event.objects.filter(processed_at__isnull=True)
        .filter(Q(received_at__lt=cutoff))
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )


# --- Merging (called by identity.services.profile_merge) ----------------------------------


@transaction.atomic
def profile_absorb(*, survivor: Profile, duplicate: Profile) -> None:
    """Move everything of `duplicate` onto `survivor` and leave `duplicate` empty.

    Events move; traits merge most-recent-wins; context comes from whichever was seen last;
    computed features combine (sums, min/max) and sessions are recounted from the merged
    timeline. `duplicate` keeps its row with `merged_into=survivor`. Both rows must be locked
    by the caller. Identities are the identity app's to move.
    """
    profiles_absorb(pairs=[(survivor, duplicate)])


def profiles_absorb(*, pairs: Sequence[tuple[Profile, Profile]]) -> None:
    """`profile_absorb` for many (survivor, duplicate) pairs in a fixed number of statements.
    No profile may appear in two pairs."""
    if not pairs:
        return
    moves = {duplicate.pk: survivor.pk for survivor, duplicate in pairs}
    rows_update_from_map(model=Event, key="profile_id", column="profile_id", mapping=moves)
    rows_update_from_map(
        model=Profile, key="merged_into_id", column="merged_into_id", mapping=moves
    )
    for survivor, duplicate in pairs:
        profile_traits_merge(into=survivor, other=duplicate)
        if duplicate.last_seen and (
            survivor.last_seen is None or duplicate.last_seen > survivor.last_seen
        ):
            survivor.context = {**survivor.context, **duplicate.context}
        else:
            survivor.context = {**duplicate.context, **survivor.context}
        survivor.first_seen = _min(survivor.first_seen, duplicate.first_seen)
        survivor.last_seen = _max(survivor.last_seen, duplicate.last_seen)
        survivor.first_order_at = _min(survivor.first_order_at, duplicate.first_order_at)
        survivor.last_order_at = _max(survivor.last_order_at, duplicate.last_order_at)
        survivor.event_count += duplicate.event_count
        survivor.order_count += duplicate.order_count
        survivor.revenue = Decimal(survivor.revenue) + Decimal(duplicate.revenue)

        duplicate.traits, duplicate.trait_timestamps, duplicate.context = {}, {}, {}
        duplicate.first_seen = duplicate.last_seen = None
        duplicate.first_order_at = duplicate.last_order_at = None
        duplicate.event_count = duplicate.session_count = duplicate.order_count = 0
        duplicate.revenue = Decimal(0)
        duplicate.merged_into = survivor
    profiles_sessions_recount(profiles=[survivor for survivor, _ in pairs])
    profiles_save(profiles=[profile for pair in pairs for profile in pair])
    rows_update_from_map(model=Profile, key="id", column="merged_into_id", mapping=moves)


def rows_update_from_map(
    *, model: type[models.Model], key: str, column: str, mapping: Mapping[int, int]
) -> None:
    """Set `column` to mapping[row's `key`] on every row whose `key` is in `mapping`, in one
    statement (merges re-point events, identities and earlier merges this way)."""
    if not mapping:
        return
    if connection.vendor == "postgresql":
        table = model._meta.db_table
        sql = (
            f"UPDATE {table} AS t SET {column} = m.new "  # noqa: S608 - names are ours
            f"FROM unnest(%s::bigint[], %s::bigint[]) AS m(old, new) WHERE t.{key} = m.old"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [list(mapping), list(mapping.values())])
        return
    model._default_manager.filter(**{f"{key}__in": list(mapping)}).update(
        **{column: Case(*(When(**{key: old}, then=Value(new)) for old, new in mapping.items()))}
    )


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


# --- Deleting (consent's erasure, retention and consent stage call these) ---------------------

DELETE_BATCH = 10_000


def _delete_in_batches(rows: models.QuerySet) -> int:
    # One short transaction per batch: a subject with millions of events neither holds locks
    # for long nor builds one huge transaction.
    total = 0
    while pks := list(rows.order_by().values_list("pk", flat=True)[:DELETE_BATCH]):
        with transaction.atomic():
            deleted, _ = rows.model._base_manager.filter(pk__in=pks).delete()
        total += deleted
    return total


def _delete_by_ids(model: type[models.Model], ids: Sequence[int]) -> int:
    total = 0
    for start in range(0, len(ids), DELETE_BATCH):
        with transaction.atomic():
            deleted, _ = model._base_manager.filter(
                pk__in=ids[start : start + DELETE_BATCH]
            ).delete()
        total += deleted
    return total


def events_delete(*, ids: Sequence[int]) -> int:
    """Delete these events, in batches; returns how many there were."""
    return _delete_by_ids(Event, ids)


def quarantined_messages_delete(*, ids: Sequence[int]) -> int:
    """Delete these quarantined messages, in batches; returns how many there were."""
    return _delete_by_ids(QuarantinedMessage, ids)


def profiles_erase(*, profile_ids: Sequence[int], identifiers: Iterable[str]) -> dict[str, int]:
    """The profiles app's part of an erasure (consent's erasure calls it once the apps above
    removed their rows): the profiles' events, events not yet resolved to a profile that carry
    one of `identifiers` as user or anonymous id, then the profiles. Returns how many rows went,
    per model label."""
    removed: dict[str, int] = {}
    unresolved = Q(pk__in=[])
    for value in identifiers:
        unresolved |= Q(user_id=value) | Q(anonymous_id=value)
    events = _delete_in_batches(Event.objects.filter(profile_id__in=profile_ids))
    events += _delete_in_batches(Event.objects.filter(unresolved))
    if events:
        removed[Event._meta.label] = events
    if profile_ids:
        with transaction.atomic():
            # Merged profiles point at each other; the links go first so the rows can.
            Profile.objects.filter(pk__in=profile_ids).update(merged_into=None)
            _, per_model = Profile.objects.filter(pk__in=profile_ids).delete()
        for label, count in per_model.items():
            if count:
                removed[label] = removed.get(label, 0) + count
    return removed
