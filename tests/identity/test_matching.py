"""The pure matching core: normalizers, comparisons, blocking, the Fellegi-Sunter model."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from identity.blocking import BlockingIndex, candidate_pairs
from identity.linkage import IncrementalMatcher, batch_match, clusters
from identity.matching import (
    DEFAULT_FIELDS,
    LEVELS,
    FieldSpec,
    Model,
    Thresholds,
    columns_from_traits,
    date_normalize,
    fields_from_config,
    model_refine,
    name_normalize,
    pair_explain,
    pairs_compare,
    pairs_score,
    phone_digits,
    postcode_normalize,
    records_prepare,
    text_fold,
)

PEOPLE = [
    {
        "firstName": "Robert",
        "lastName": "Müller",
        "email": "rob.mueller@example.com",
        "phone": "+44 7700 900123",
        "birthday": "1984-03-07",
        "address": {"street": "12 Baker Street", "city": "London", "postalCode": "NW1 6XE"},
    },
    {
        "firstName": "bob",
        "lastName": "Muller",
        "email": "bob.mueller@work.example",
        "phone": "07700900123",
        "birthday": "1984-07-03",
        "address": {"street": "12 Baker St", "city": "london", "postalCode": "nw16xe"},
    },
    {
        "firstName": "Alice",
        "lastName": "Zhang",
        "email": "alice@example.org",
        "birthday": "1990-01-20",
        "address": {"street": "4 Rue de Rivoli", "city": "Paris", "postalCode": "75004"},
    },
    {"name": "Alice Zhang", "birthday": "20/01/1990", "address": {"postalCode": "75004"}},
]


def prepared(traits=PEOPLE, fields=DEFAULT_FIELDS):
    return records_prepare(columns_from_traits(traits, fields), fields)


def test_names_fold_case_accents_and_width():
    assert name_normalize("  Müller ") == "muller"
    assert name_normalize("\uff2d\uff35\uff2c\uff2c\uff25\uff32") == "muller"  # full-width (NFKC)
    assert name_normalize("Lillie-Hinrichs") == name_normalize("lillie hinrichs")
    assert name_normalize("Straße") == "strasse"
    assert name_normalize(None) == "" and name_normalize("null") == ""


def test_postcodes_phones_and_dates_normalize():
    assert postcode_normalize("sw1a 1aa") == "SW1A1AA"
    assert postcode_normalize(2119.0) == "2119"
    assert phone_digits("+44 (0)7700-900123") == phone_digits("07700 900123")
    assert date_normalize("1984-03-07T00:00:00Z") == "19840307"
    assert date_normalize("07/03/1984") == "19840307"  # day first
    assert date_normalize("19840307") == "19840307"
    assert date_normalize("not a date") == ""


@given(st.text(max_size=40))
def test_normalizers_are_idempotent(text):
    for fn in (name_normalize, text_fold, postcode_normalize):
        once = fn(text)
        assert fn(once) == once


@given(st.text(max_size=30), st.text(max_size=30))
@settings(max_examples=200, deadline=None)
def test_comparison_is_symmetric_and_exact_on_equal_values(a, b):
    traits = [
        {"firstName": a, "lastName": b, "address": {"street": a, "city": b}},
        {"firstName": b, "lastName": a, "address": {"street": b, "city": a}},
        {"firstName": a, "lastName": b, "address": {"street": a, "city": b}},
    ]
    p = prepared(traits)
    forward = pairs_compare(p, p, np.array([0]), np.array([1]))
    backward = pairs_compare(p, p, np.array([1]), np.array([0]))
    assert (forward == backward).all()
    same = pairs_compare(p, p, np.array([0]), np.array([2]))[0]
    for column, spec in enumerate(p.fields[:2]):
        value = name_normalize(a if column == 0 else b)
        assert same[column] == (1 if value else 0), spec


def test_levels_pick_nickname_swapped_birthday_and_same_street():
    p = prepared()
    levels = pairs_compare(p, p, np.array([0]), np.array([1]))[0]
    names = [f.path for f in p.fields if f.kind != "full_name"]
    level = {
        path: LEVELS[spec.kind][levels[i] - 1] if levels[i] else "null"
        for i, (path, spec) in enumerate(
            zip(names, [f for f in p.fields if f.kind != "full_name"], strict=True)
        )
    }
    assert level["firstName"] == "nickname"
    assert level["lastName"] == "exact"
    assert level["birthday"] == "day_month_swapped"
    assert level["phone"] == "exact"
    assert level["address"] == "same_number_similar_street_same_area"


def test_full_name_fills_missing_first_and_last_names():
    p = prepared()
    assert p.cols["firstName"][3] == "alice" and p.cols["lastName"][3] == "zhang"


def test_unknown_field_kinds_are_refused():
    with pytest.raises(ValueError, match="unknown field kind"):
        fields_from_config([{"path": "x", "kind": "nope"}])
    with pytest.raises(ValueError, match="twice"):
        fields_from_config([{"path": "x", "kind": "text"}, {"path": "x", "kind": "id"}])
    assert fields_from_config(None) == DEFAULT_FIELDS


def test_thresholds_must_be_ordered():
    with pytest.raises(ValueError):
        Thresholds(merge=0.5, review=0.9)
    assert list(Thresholds(merge=0.9, review=0.5).decide(np.array([0.95, 0.6, 0.1]))) == [2, 1, 0]


def _synthetic(n_people: int, seed: int = 1):
    rng = np.random.default_rng(seed)
    firsts = ["anna", "bert", "carla", "dmitri", "eve", "farid", "gina", "hugo", "ines", "jon"]
    lasts = ["smith", "okafor", "nguyen", "garcia", "kowalski", "rossi", "tanaka", "dubois"]
    people = []
    for k in range(n_people):
        people.append(
            {
                "firstName": firsts[rng.integers(len(firsts))],
                "lastName": lasts[rng.integers(len(lasts))] + str(k % 37),
                "birthday": f"19{rng.integers(40, 99)}-{rng.integers(1, 13):02d}-"
                f"{rng.integers(1, 29):02d}",
                "email": f"p{k}@example.com",
                "address": {
                    "street": f"{rng.integers(1, 300)} {lasts[rng.integers(len(lasts))]} road",
                    "postalCode": str(1000 + rng.integers(0, 50)),
                    "city": "springfield",
                },
            }
        )
    dups = []
    truth = list(range(n_people))
    for k in range(0, n_people, 3):
        d = {**people[k], "email": f"other{k}@example.net"}
        if k % 2:
            d["firstName"] = d["firstName"][:-1] + "x"  # a typo
        dups.append(d)
        truth.append(k)
    return people + dups, np.array(truth)


def test_batch_match_finds_duplicates_without_labels():
    traits, truth = _synthetic(1200)  # enough records for EM (MIN_FIT_RECORDS)
    p = prepared(traits)
    result = batch_match(p, thresholds=Thresholds())
    merged = result.selected(2)
    same = truth[result.left[merged]] == truth[result.right[merged]]
    assert same.mean() > 0.95
    assert len(merged) >= 0.9 * (len(traits) - 1200)
    labels = clusters(p.size, result.left[merged], result.right[merged])
    assert len(set(labels)) < len(traits)


def test_blocking_finds_the_same_pairs_as_the_index():
    traits, _ = _synthetic(120)
    p = prepared(traits)
    left, right, _ = candidate_pairs(p)
    assert (left < right).all()
    index = BlockingIndex(p)
    pairs = set(zip(left.tolist(), right.tolist(), strict=True))
    for i in range(0, p.size, 7):
        found = set(index.candidates(p.take(np.array([i]))).tolist()) - {i}
        assert found == {j for a, b in pairs for j in (a, b) if i in (a, b) and j != i}


def test_explanation_adds_up_to_the_score_and_model_round_trips():
    traits, _ = _synthetic(200)
    p = prepared(traits)
    result = batch_match(p, thresholds=Thresholds())
    k = int(np.argmax(result.probability))
    explanation = pair_explain(result.model, p, p, result.left[k], result.right[k])
    score = pairs_score(result.model, p, result.left[k : k + 1], result.levels[k : k + 1])[0]
    assert explanation.weight == pytest.approx(score, abs=1e-3)  # weights shown rounded
    again = Model.from_json(result.model.to_json())
    assert np.allclose(again.score(result.levels), result.model.score(result.levels))


def test_staff_decisions_raise_the_weight_of_what_confirmed_matches_share():
    traits, _ = _synthetic(200)
    p = prepared(traits)
    result = batch_match(p, thresholds=Thresholds())
    levels = result.levels
    labels = np.zeros(len(levels), dtype=bool)
    labels[: max(1, len(levels) // 4)] = True
    refined = model_refine(result.model, levels, labels)
    assert refined.meta["refined_with"] == labels.sum()
    assert not all(np.allclose(a, b) for a, b in zip(refined.m, result.model.m, strict=True))


def test_incremental_match_finds_the_duplicate_of_a_new_profile():
    traits, _ = _synthetic(300)
    p = prepared(traits)
    result = batch_match(p, thresholds=Thresholds())
    matcher = IncrementalMatcher(p.take(np.arange(300)), result.model, thresholds=Thresholds())
    new = dict(traits[0], email="fresh@example.com")
    found, probability, _ = matcher.match(prepared([new]))
    assert found[0] == 0 and probability[0] >= 0.8


def test_custom_id_field_is_compared_with_edit_distance():
    fields = (*DEFAULT_FIELDS, FieldSpec("crmId", "id"))
    p = prepared([{"crmId": "AB-1234"}, {"crmId": "ab1243"}], fields)
    levels = pairs_compare(p, p, np.array([0]), np.array([1]))[0]
    assert LEVELS["id"][levels[-1] - 1] == "damerau<=1"
