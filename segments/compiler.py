"""Compile a validated definition (segments/conditions.py) into a Django `Q` on Profile.

Nothing from a definition becomes SQL text: trait and property paths become JSON key
transforms (keys travel as parameters), names and values become lookup parameters. The only
SQL written here is `JSONTypeOf`, a fixed function template per database. Works on PostgreSQL
and SQLite; `tests/segments/test_differential.py` holds it equal to `conditions.evaluate`.

Every leaf compiles to an expression that is never NULL (a missing key is guarded by its JSON
type), so negation (`none`, `neq`, `not_in`, `not_exists`) stays two-valued.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connection
from django.db.models import (
    CharField,
    Count,
    DateTimeField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Value,
)
from django.db.models.fields.json import KT
from django.db.models.functions import Substr
from django.db.models.lookups import (
    Exact,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    LessThan,
    LessThanOrEqual,
    Lookup,
)

from consent.selectors import consent_profiles_allowed
from identity.models import Identity
from profiles.models import Event, Profile
from segments import conditions as c
from segments.models import ProfileScore

ISO_DATE_REGEX = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}"


class JSONTypeOf(Func):
    """The JSON type at a key path: string, number, boolean, null, array, object or missing."""

    output_field = CharField()

    def __init__(self, column: str, keys: tuple[str, ...]) -> None:
        super().__init__(F(column))
        self.keys = keys

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"COALESCE(jsonb_typeof({sql} #> %s), 'missing')", [*params, list(self.keys)]

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        sql, params = compiler.compile(self.source_expressions[0])
        path = "$" + "".join(f'."{key}"' for key in self.keys)
        return (
            f"CASE json_type({sql}, %s) WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' "
            f"WHEN 'text' THEN 'string' WHEN 'true' THEN 'boolean' WHEN 'false' THEN 'boolean' "
            f"ELSE COALESCE(json_type({sql}, %s), 'missing') END",
            [*params, path, *params, path],
        )

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list]:
        raise NotImplementedError(f"segments need PostgreSQL or SQLite, not {connection.vendor}")


class AnyOf(Lookup):
    """`column` is one of `ids`: a single array parameter on PostgreSQL (`= ANY(%s)`), so the
    SQL text is the same whatever the number of profiles and can be compiled once; an IN list
    elsewhere."""

    lookup_name = "any_of"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list]:
        lhs, params = self.process_lhs(compiler, connection)
        ids = [int(i) for i in self.rhs]
        if connection.vendor == "postgresql":
            return f"{lhs} = ANY(%s::bigint[])", [*params, ids]
        if not ids:
            return "1 = 0", list(params)
        return f"{lhs} IN ({', '.join(['%s'] * len(ids))})", [*params, *ids]


def _path_lookup(column: str, keys: tuple[str, ...], lookup: str, value: Any) -> Q:
    """Django's JSON key transforms, built from validated keys (no "__", safe characters).
    An explicit final lookup means no key is ever read as a lookup name."""
    return Q(**{f"{column}__{'__'.join(keys)}__{lookup}": value})


def _typed(typ: Any, kind: str) -> Q:
    return Q(Exact(typ, kind))


NEGATIONS = {"neq": "eq", "not_in": "in", "not_exists": "exists"}


def _nested(keys: tuple[str, ...], value: Any) -> Any:
    """{"a": {"b": value}} for the path a.b."""
    for key in reversed(keys):
        value = {key: value}
    return value


def json_value_q(column: str, path: str, op: str, value: Any, now: dt.datetime) -> Q:
    """`column` (a JSONField) at dotted `path`, compared like conditions.value_matches."""
    if op in NEGATIONS:
        return ~json_value_q(column, path, NEGATIONS[op], value, now)
    keys = tuple(path.split("."))
    typ = JSONTypeOf(column, keys)
    if op == "exists":
        return ~Q(In(typ, ["missing", "null"]))
    if op == "eq":
        if connection.vendor == "postgresql":
            # jsonb containment is type-exact (1 is not "1", true is not 1, 1 equals 1.0) and
            # never NULL on these non-null columns: one operator instead of a type probe and a
            # comparison per row (the segment count scans every profile).
            return Q(**{f"{column}__contains": _nested(keys, value)})
        return _typed(typ, c.json_type(value)) & _path_lookup(column, keys, "exact", value)
    if op == "in":
        q = Q(pk__in=[])
        for kind in ("string", "number", "boolean"):
            group = [v for v in value if c.json_type(v) == kind]
            if kind == "boolean":
                for item in group:
                    q |= _typed(typ, kind) & _path_lookup(column, keys, "exact", item)
            elif group:
                q |= _typed(typ, kind) & _path_lookup(column, keys, "in", group)
        return q
    if op in ("contains", "starts_with"):
        lookup = "icontains" if op == "contains" else "istartswith"
        return _typed(typ, "string") & _path_lookup(column, keys, lookup, value)
    if op in ("gt", "gte", "lt", "lte") or (op == "between" and c.is_number(value[0])):
        if op == "between":
            return (
                _typed(typ, "number")
                & _path_lookup(column, keys, "gte", value[0])
                & _path_lookup(column, keys, "lte", value[1])
            )
        return _typed(typ, "number") & _path_lookup(column, keys, op, value)
    # Date operators on strings that start with an ISO date: compare the date part as text.
    if op == "within_last":
        op, value = (
            "between",
            [(now - c.duration(value)).date().isoformat(), now.date().isoformat()],
        )
    day = Substr(KT(f"{column}__{'__'.join(keys)}"), 1, 10, output_field=CharField())
    guard = _typed(typ, "string") & _path_lookup(column, keys, "regex", ISO_DATE_REGEX)
    if op == "before":
        return guard & Q(LessThan(day, value))
    if op == "after":
        return guard & Q(GreaterThan(day, value))
    if op == "between":
        return guard & Q(GreaterThanOrEqual(day, value[0])) & Q(LessThanOrEqual(day, value[1]))
    raise ValueError(op)


def datetime_q(field: str, op: str, value: Any, now: dt.datetime) -> Q:
    """A nullable datetime column against a date operator (conditions.datetime_matches)."""
    if op == "not_exists":
        return Q(**{f"{field}__isnull": True})
    present = Q(**{f"{field}__isnull": False})
    if op == "exists":
        return present
    if op == "before":
        return present & Q(**{f"{field}__lt": c.day_start(dt.date.fromisoformat(value))})
    if op == "after":
        start = c.day_start(dt.date.fromisoformat(value) + dt.timedelta(days=1))
        return present & Q(**{f"{field}__gte": start})
    if op == "between":
        start = c.day_start(dt.date.fromisoformat(value[0]))
        end = c.day_start(dt.date.fromisoformat(value[1]) + dt.timedelta(days=1))
        return present & Q(**{f"{field}__gte": start, f"{field}__lt": end})
    if op == "within_last":
        return present & Q(**{f"{field}__gte": now - c.duration(value), f"{field}__lte": now})
    raise ValueError(op)


# Cheapest first: PostgreSQL keeps the written order of predicates it estimates to cost the
# same, so a column comparison (computed features) runs before a JSON probe (traits), and both
# before subqueries, which then only see the rows that passed.
COST_RANK = {"computed": 0, "trait": 1}


class Compiler:
    """compile(definition) -> Q on Profile; `profile_ids` narrows event subqueries to those
    profiles (the real-time path checks a chunk's profiles), `now` fixes every relative
    window."""

    def __init__(
        self,
        *,
        now: dt.datetime,
        segments: Callable[[int], Mapping[str, Any] | None] = lambda _id: None,
        profile_ids: Collection[int] | None = None,
    ) -> None:
        self.now = now
        self.segments = segments
        self.profile_ids = None if profile_ids is None else sorted(profile_ids)

    def compile(self, node: Mapping[str, Any], _seen: frozenset[int] = frozenset()) -> Q:
        kind = c.node_kind(node)
        if kind in c.GROUP_KEYS:
            children = sorted(node[kind], key=lambda child: COST_RANK.get(c.node_kind(child), 2))
            parts = [self.compile(child, _seen) for child in children]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if kind == "all" else combined | part
            return ~combined if kind == "none" else combined
        if kind == "trait":
            return json_value_q("traits", node["trait"], node["op"], node.get("value"), self.now)
        if kind == "event":
            return self.event_q(node)
        if kind == "computed":
            return self.computed_q(node)
        if kind == "has_identifier":
            return Q(
                Exists(
                    self._narrow(Identity.objects.filter(kind=node["has_identifier"]), "profile_id")
                )
            )
        if kind == "consent":
            return self.consent_q(node["consent"])
        if kind == "segment":
            target = self.segments(node["segment"]) if node["segment"] not in _seen else None
            inner = self.compile(target, _seen | {node["segment"]}) if target else Q(pk__in=[])
            return inner if node.get("member", True) else ~inner
        if kind == "cluster":
            return self._score_q("cluster", Q(value=node["cluster"]))
        if kind == "propensity":
            op, value = node["op"], node["value"]
            cond = (
                Q(value__gte=value[0], value__lte=value[1])
                if op == "between"
                else Q(**{f"value__{op}": value})
            )
            return self._score_q(node["propensity"], cond)
        raise ValueError(kind)

    def _narrow(self, qs: QuerySet, column: str) -> QuerySet:
        """Correlate a subquery with the outer profile (and pin it when checking a few)."""
        qs = qs.filter(**{column: OuterRef("pk")})
        if self.profile_ids is not None:
            qs = qs.filter(AnyOf(F(column), self.profile_ids))
        return qs

    def consent_q(self, purpose: str) -> Q:
        """Through the consent app's gate (`consent_profiles_allowed`: latest record, else the
        purpose's default; suppressed profiles allow nothing)."""
        profiles = Profile.objects.all()
        if self.profile_ids is not None:
            profiles = profiles.filter(AnyOf(F("pk"), self.profile_ids))
        return Q(pk__in=consent_profiles_allowed(purpose=purpose, profiles=profiles).values("pk"))

    def _score_q(self, kind: str, cond: Q) -> Q:
        return Q(Exists(self._narrow(ProfileScore.objects.filter(cond, kind=kind), "profile_id")))

    def computed_q(self, node: Mapping[str, Any]) -> Q:
        name, op, value = node["computed"], node["op"], node.get("value")
        if name in c.DATETIME_COMPUTED:
            return datetime_q(c.DATETIME_COMPUTED[name], op, value, self.now)
        if name == "recency":
            return self._recency_q(op, value)
        column = c.NUMERIC_COMPUTED[name]
        if op == "between":
            return Q(**{f"{column}__gte": _number(value[0]), f"{column}__lte": _number(value[1])})
        if op == "neq":
            return ~Q(**{column: _number(value)})
        return Q(**{f"{column}__{'exact' if op == 'eq' else op}": _number(value)})

    def _recency_q(self, op: str, value: Any) -> Q:
        ordered = Q(last_order_at__isnull=False)
        seen_only = Q(last_order_at__isnull=True, last_seen__isnull=False)
        if op == "not_exists":
            return Q(last_order_at__isnull=True, last_seen__isnull=True)
        if op == "exists":
            return ordered | seen_only
        # recency > N  <=>  reference < now - N days; reference = last order, else last seen.
        if op == "between":
            low = self.now - dt.timedelta(days=value[1])
            high = self.now - dt.timedelta(days=value[0])
            conds = {"gte": low, "lte": high}
        else:
            cut = self.now - dt.timedelta(days=value)
            conds = {{"gt": "lt", "gte": "lte", "lt": "gt", "lte": "gte"}[op]: cut}
        on_order = Q(**{f"last_order_at__{k}": v for k, v in conds.items()})
        on_seen = Q(**{f"last_seen__{k}": v for k, v in conds.items()})
        return (ordered & on_order) | (seen_only & on_seen)

    def _events(self, name: str, where: list[Mapping[str, Any]]) -> QuerySet:
        qs = Event.objects.filter(event=name, profile__isnull=False)
        if self.profile_ids is not None:
            qs = qs.filter(AnyOf(F("profile_id"), self.profile_ids))
        for item in where:
            qs = qs.filter(
                json_value_q(
                    "properties", item["property"], item["op"], item.get("value"), self.now
                )
            )
        return qs

    def event_q(self, node: Mapping[str, Any]) -> Q:
        qs = self._events(node["event"], node.get("where", []))
        start, end = c.window_bounds(node.get("within"), self.now)
        if start is not None:
            qs = qs.filter(timestamp__gte=start)
        if end is not None:
            qs = qs.filter(timestamp__lt=end)
        for key, agg in (("first", Min), ("last", Max)):
            if key in node:
                spec = node[key]
                moments = qs.values("profile_id").annotate(moment=agg("timestamp"))
                matching = moments.filter(datetime_q("moment", spec["op"], spec["value"], self.now))
                return Q(pk__in=matching.values("profile_id"))
        follow = node.get("not_followed_by")
        if follow is not None:
            delta = c.duration(follow["within"])
            later = self._events(follow["event"], follow.get("where", [])).filter(
                profile_id=OuterRef("profile_id"),
                timestamp__gt=OuterRef("timestamp"),
                timestamp__lte=ExpressionWrapper(
                    OuterRef("timestamp") + Value(delta), output_field=DateTimeField()
                ),
            )
            unanswered = qs.filter(timestamp__lte=self.now - delta).filter(~Exists(later))
            return Q(pk__in=unanswered.values("profile_id"))
        count = node.get("count", {"op": "gte", "value": 1})
        op, n = count["op"], count["value"]
        if (op, n) in (("gte", 1), ("gt", 0)):
            return Q(Exists(qs.filter(profile_id=OuterRef("pk"))))
        counted = qs.values("profile_id").annotate(n=Count("*"))  # "*": index-only scans
        holds = Q(**{f"n__{'exact' if op in ('eq', 'neq') else op}": n})
        if op == "neq":
            holds = ~holds
        if c.compare(0, op, n):
            # Zero events satisfy it: members are everyone except those whose count fails.
            return ~Q(pk__in=counted.filter(~holds).values("profile_id"))
        return Q(pk__in=counted.filter(holds).values("profile_id"))


def base_profiles() -> QuerySet[Profile]:
    """Profiles a segment can contain: merged-away duplicates never count."""
    return Profile.objects.filter(merged_into__isnull=True)


def compile_definition(
    definition: Mapping[str, Any],
    *,
    now: dt.datetime,
    segments: Callable[[int], Mapping[str, Any] | None] = lambda _id: None,
    profile_ids: Collection[int] | None = None,
) -> Q:
    return Compiler(now=now, segments=segments, profile_ids=profile_ids).compile(definition)


def compiled_sql(qs: QuerySet) -> tuple[str, tuple] | None:
    """The queryset's SQL and parameters, or None when it can match no row: Django refuses to
    compile such a query (EmptyResultSet), e.g. for a bound outside an integer column's range
    (event_count < -1). Callers that splice the SQL into their own statements must treat None
    as "matches nobody"."""
    try:
        return qs.query.sql_with_params()
    except EmptyResultSet:
        return None


__all__ = ["base_profiles", "compile_definition", "compiled_sql"]


def _number(value: Any) -> Any:
    """A fractional bound stays fractional: an integer column's lookup would otherwise truncate
    it (event_count = 0.5 would match 0 events)."""
    if isinstance(value, float) and not value.is_integer():
        return Value(value, output_field=FloatField())
    return value
