"""Differential test: for random definitions over random profiles and events, the compiled
query (PostgreSQL) selects exactly the profiles the reference evaluator accepts."""

import datetime as dt

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segments import conditions
from segments.compiler import base_profiles, compile_definition
from segments.models import ModelRun, ProfileScore
from segments.selectors import profile_facts
from tests.segments.conftest import NOW, make_profile

pytestmark = pytest.mark.django_db(transaction=False)

DATES = ["2026-05-01", "2026-06-01", "2026-06-14", "2026-06-15"]
TEXT = st.text(alphabet="yY%_", min_size=1, max_size=2)
STRINGS = st.one_of(TEXT, st.sampled_from(["2026-06-01", "2026-06-14T23:00:00Z", "2025-12-31"]))
NUMBERS = st.one_of(st.integers(-2, 5), st.sampled_from([0.5, 2.5, 100.5]))
SCALARS = st.one_of(STRINGS, NUMBERS, st.booleans())
JSON_VALUES = st.one_of(
    SCALARS, st.none(), st.lists(SCALARS, max_size=2), st.fixed_dictionaries({"d": SCALARS})
)
PATHS = st.sampled_from(["a", "b", "c.d"])


def _sorted_pair(values):
    return st.lists(values, min_size=2, max_size=2).map(sorted)


def value_ops(*, dates: bool):
    ops = [
        st.tuples(st.sampled_from(["eq", "neq"]), SCALARS),
        st.tuples(st.sampled_from(["contains", "starts_with"]), TEXT),
        st.tuples(st.sampled_from(["in", "not_in"]), st.lists(SCALARS, min_size=1, max_size=3)),
        st.tuples(st.sampled_from(["exists", "not_exists"]), st.none()),
        st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), NUMBERS),
        st.tuples(st.just("between"), _sorted_pair(NUMBERS)),
    ]
    if dates:
        ops += [
            st.tuples(st.sampled_from(["before", "after"]), st.sampled_from(DATES)),
            st.tuples(st.just("between"), _sorted_pair(st.sampled_from(DATES))),
            st.tuples(st.just("within_last"), st.builds(lambda n: {"days": n}, st.integers(0, 40))),
        ]
    return st.one_of(ops)


def _with_value(base: dict, op_value) -> dict:
    op, value = op_value
    node = {**base, "op": op}
    if op not in ("exists", "not_exists"):
        node["value"] = value
    return node


trait_leaf = st.builds(
    lambda path, ov: _with_value({"trait": path}, ov), PATHS, value_ops(dates=True)
)
where = st.lists(
    st.builds(
        lambda p, ov: _with_value({"property": p}, ov),
        st.sampled_from(["p", "q"]),
        value_ops(dates=False),
    ),
    max_size=2,
)
windows = st.one_of(
    st.none(),
    st.builds(lambda n: {"days": n}, st.integers(0, 40)),
    st.builds(lambda n: {"hours": n}, st.integers(0, 100)),
    st.builds(lambda pair: {"between": pair}, _sorted_pair(st.sampled_from(DATES))),
)
EVENT_NAMES = st.sampled_from(["A", "B", "C"])


def _event(name, filters, window, count, tail):
    node = {"event": name}
    if filters:
        node["where"] = filters
    kind, spec = tail
    if kind in ("first", "last"):
        node[kind] = spec
        return node
    if window:
        node["within"] = window
    if kind == "follow":
        node["not_followed_by"] = spec
    elif count:
        node["count"] = count
    return node


event_leaf = st.builds(
    _event,
    EVENT_NAMES,
    where,
    windows,
    st.one_of(
        st.none(),
        st.builds(
            lambda op, n: {"op": op, "value": n},
            st.sampled_from(conditions.COUNT_OPS),
            st.integers(0, 3),
        ),
    ),
    st.one_of(
        st.tuples(st.just("plain"), st.none()),
        st.tuples(
            st.just("follow"),
            st.builds(
                lambda n, w, h: (
                    {"event": n, "where": w, "within": {"hours": h}}
                    if w
                    else {"event": n, "within": {"hours": h}}
                ),
                EVENT_NAMES,
                where,
                st.integers(0, 72),
            ),
        ),
        st.tuples(
            st.sampled_from(["first", "last"]),
            st.one_of(
                st.builds(
                    lambda op, d: {"op": op, "value": d},
                    st.sampled_from(["before", "after"]),
                    st.sampled_from(DATES),
                ),
                st.builds(
                    lambda n: {"op": "within_last", "value": {"days": n}}, st.integers(0, 40)
                ),
                st.builds(
                    lambda pair: {"op": "between", "value": pair},
                    _sorted_pair(st.sampled_from(DATES)),
                ),
            ),
        ),
    ),
)
numeric_computed = st.builds(
    lambda name, ov: _with_value({"computed": name}, ov),
    st.sampled_from(sorted(conditions.NUMERIC_COMPUTED)),
    st.one_of(
        st.tuples(st.sampled_from(["eq", "neq", "gt", "gte", "lt", "lte"]), NUMBERS),
        st.tuples(st.just("between"), _sorted_pair(NUMBERS)),
    ),
)
date_computed = st.builds(
    lambda name, ov: _with_value({"computed": name}, ov),
    st.sampled_from(sorted(conditions.DATETIME_COMPUTED)),
    st.one_of(
        st.tuples(st.sampled_from(["before", "after"]), st.sampled_from(DATES)),
        st.tuples(st.just("between"), _sorted_pair(st.sampled_from(DATES))),
        st.tuples(st.just("within_last"), st.builds(lambda n: {"days": n}, st.integers(0, 40))),
        st.tuples(st.sampled_from(["exists", "not_exists"]), st.none()),
    ),
)
recency = st.builds(
    lambda ov: _with_value({"computed": "recency"}, ov),
    st.one_of(
        st.tuples(st.sampled_from(["gt", "gte", "lt", "lte"]), st.integers(0, 60)),
        st.tuples(st.just("between"), _sorted_pair(st.integers(0, 60))),
        st.tuples(st.sampled_from(["exists", "not_exists"]), st.none()),
    ),
)
other_leaf = st.one_of(
    st.builds(lambda k: {"has_identifier": k}, st.sampled_from(["email", "phone"])),
    st.builds(lambda k: {"cluster": k}, st.integers(0, 2)),
    st.builds(
        lambda op, v: {"propensity": "churn", "op": op, "value": v},
        st.sampled_from(["gt", "lte"]),
        st.sampled_from([0.25, 0.5]),
    ),
)
leaves = st.one_of(trait_leaf, event_leaf, numeric_computed, date_computed, recency, other_leaf)
trees = st.recursive(
    leaves,
    lambda children: st.builds(
        lambda k, xs: {k: xs},
        st.sampled_from(conditions.GROUP_KEYS),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=5,
)

moments = st.one_of(st.none(), st.integers(0, 60 * 24).map(lambda h: NOW - dt.timedelta(hours=h)))
profiles = st.lists(
    st.fixed_dictionaries(
        {
            "traits": st.dictionaries(
                st.sampled_from(["a", "b", "c"]), JSON_VALUES, min_size=1, max_size=3
            ),
            "revenue": st.sampled_from([0, 10, 100.5]),
            "order_count": st.integers(0, 3),
            "last_order_at": moments,
            "last_seen": moments,
            "first_seen": moments,
            "events": st.lists(
                st.tuples(
                    EVENT_NAMES,
                    st.integers(0, 24 * 45).map(lambda h: NOW - dt.timedelta(hours=h)),
                    st.dictionaries(st.sampled_from(["p", "q"]), JSON_VALUES, max_size=2),
                ),
                max_size=5,
            ),
            "identifiers": st.lists(st.sampled_from(["email", "phone"]), unique=True, max_size=2),
            "cluster": st.one_of(st.none(), st.integers(0, 2)),
            "churn": st.one_of(st.none(), st.sampled_from([0.1, 0.25, 0.9])),
        }
    ),
    min_size=1,
    max_size=5,
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(tree=trees, people=profiles)
def test_compiled_query_selects_exactly_what_the_reference_evaluator_accepts(source, tree, people):
    try:
        conditions.validate(tree)
    except conditions.InvalidDefinition:
        return  # the strategies aim at valid trees; the rare invalid combination is skipped
    with transaction.atomic():
        run = ModelRun.objects.create(kind="churn")
        made = []
        for person in people:
            person = dict(person)
            cluster, churn = person.pop("cluster"), person.pop("churn")
            profile = make_profile(source, **person)
            if cluster is not None:
                ProfileScore.objects.create(profile=profile, kind="cluster", value=cluster, run=run)
            if churn is not None:
                ProfileScore.objects.create(profile=profile, kind="churn", value=churn, run=run)
            made.append(profile)
        compiled = set(
            base_profiles().filter(compile_definition(tree, now=NOW)).values_list("pk", flat=True)
        )
        reference = {
            p.pk for p in made if conditions.evaluate(tree, profile_facts(profile=p), now=NOW)
        }
        transaction.set_rollback(True)
    assert compiled == reference, conditions.describe(tree)


TRAIT_SAMPLES = [
    None,
    "Yy",
    "yY%",
    "a_b",
    "2026-06-01",
    "2026-06-14T23:00:00Z",
    "2025-12-31x",
    0,
    2.5,
    5,
    True,
    False,
    ["y"],
    {"d": 1},
]
OP_VALUES = [
    *[("eq", v) for v in ["Yy", "yy", 0, 2.5, 5.0, True, False, "2026-06-01"]],
    *[("neq", v) for v in ["Yy", 0, True]],
    *[(op, v) for op in ("contains", "starts_with") for v in ["y", "Y%", "%", "_", "a_", "2026"]],
    ("in", ["Yy", 2.5, False]),
    ("not_in", ["yY%", 0, True]),
    ("exists", None),
    ("not_exists", None),
    *[(op, v) for op in ("gt", "gte", "lt", "lte") for v in [0, 2.5, 5]],
    ("between", [0, 2.5]),
    ("between", ["2026-06-01", "2026-06-14"]),
    *[(op, v) for op in ("before", "after") for v in ["2026-06-01", "2026-06-14"]],
    *[("within_last", {"days": n}) for n in (0, 1, 14)],
]


def test_every_trait_operator_agrees_on_every_json_type(source):
    made = [
        make_profile(source, traits={} if v is None and i == 0 else {"a": v})
        for i, v in enumerate([None, *TRAIT_SAMPLES])
    ]
    nontrivial = 0
    for op, value in OP_VALUES:
        node = {"trait": "a", "op": op} | ({} if value is None else {"value": value})
        for tree in (node,):
            try:
                conditions.validate(tree)
            except conditions.InvalidDefinition:
                continue  # date operators are refused on event properties
            compiled = set(
                base_profiles()
                .filter(compile_definition(tree, now=NOW))
                .values_list("pk", flat=True)
            )
            reference = {
                p.pk for p in made if conditions.evaluate(tree, profile_facts(profile=p), now=NOW)
            }
            assert compiled == reference, tree
            nontrivial += 0 < len(reference) < len(made)
    assert nontrivial > 30  # most operators split the cast: the comparison is not vacuous


def test_every_event_property_operator_agrees_on_every_json_type(source):
    made = [
        make_profile(
            source, events=[("A", NOW - dt.timedelta(hours=1), {} if i == 0 else {"a": v})]
        )
        for i, v in enumerate([None, *TRAIT_SAMPLES])
    ]
    for op, value in OP_VALUES:
        if op in ("before", "after", "within_last") or (
            op == "between" and isinstance(value[0], str)
        ):
            continue
        tree = {
            "event": "A",
            "where": [{"property": "a", "op": op, **({} if value is None else {"value": value})}],
        }
        conditions.validate(tree)
        compiled = set(
            base_profiles().filter(compile_definition(tree, now=NOW)).values_list("pk", flat=True)
        )
        reference = {
            p.pk for p in made if conditions.evaluate(tree, profile_facts(profile=p), now=NOW)
        }
        assert compiled == reference, tree
