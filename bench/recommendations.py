"""Recommendations benchmark (issue 13). Prints each figure next to its target and anchor.

Data: UCI Online Retail (bench/data/online-retail/), each invoice sent through the project's
own interaction builder as a Segment `Order Completed` event (recommendations.interactions:
products[] with product_id = StockCode, name = Description, price, quantity); cancellations,
lines without a customer and non-positive quantities are left out, as bench/segments.py does.
A customer's group is their country.

Test window: the last 30 days of the data kept, counted back from its last transaction; the
models learn from what came before, and the hybrid tunes its blend on the last 30 days of
*that* (never on the test window). Protocols (recommendations.recommenders.evaluation):
discovery for accuracy (items the customer had are excluded from lists and relevance), the
cold-start slice (customers with no earlier purchase), repeat for buy again. Baselines are
measured in the same run, beside the anchors the issue quotes for this split.

Options: `--until DATE` ignores transactions from DATE on (the second window of the issue is
`--until 2011-11-09`); `--export FILE` writes the serving model's top-10 `home` list of every
customer who bought before the test window, as `user,item,rank` (CustomerID, StockCode).

Times are wall clock and CPU seconds of this process, with ML at one thread (as the ml queue
runs it); on a machine shared with other work, wall time exceeds CPU time.

`python -m bench recommendations [--until DATE] [--export FILE]`
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RETAIL = ROOT / "bench" / "data" / "online-retail" / "online_retail.parquet"
TEST_DAYS = 30
TARGET_NDCG = 0.105
TARGET_COLD = 0.11
TARGET_REPEAT = 0.34
TARGET_TRAIN_SECONDS = 30.0
TARGET_USERS_PER_SECOND = 5000.0


def retail_data(until: datetime | None = None) -> tuple[Any, dict[str, Any]]:
    """The purchases as TrainingData (customers by CustomerID, items by StockCode), built by
    feeding each invoice to the project's interaction builder; plus load facts."""
    import pandas as pd
    from django.conf import settings

    from recommendations.interactions import event_products
    from recommendations.recommenders.base import TrainingData

    started = time.perf_counter()
    frame = pd.read_parquet(RETAIL)
    frame = frame[
        frame["CustomerID"].notna()
        & ~frame["InvoiceNo"].astype(str).str.startswith("C")
        & (frame["Quantity"] > 0)
    ]
    if until is not None:
        frame = frame[frame["InvoiceDate"] < pd.Timestamp(until)]
    records, titles = [], {}
    columns = ["StockCode", "Description", "UnitPrice", "Quantity"]
    for (customer, _invoice), lines in frame.groupby(["CustomerID", "InvoiceNo"], sort=False)[
        ["InvoiceDate", *columns]
    ]:
        properties = {
            "products": [
                {"product_id": str(code), "name": name, "price": price, "quantity": quantity}
                for code, name, price, quantity in lines[columns].itertuples(index=False)
            ]
        }
        at = lines["InvoiceDate"].iloc[0].to_pydatetime()
        for touch in event_products("Order Completed", properties):
            records.append((int(customer), touch.external_id, touch.kind, at))
            if "title" in touch.fields:
                titles[touch.external_id] = touch.fields["title"]
    countries = frame.groupby("CustomerID")["Country"].first()
    data = TrainingData.from_records(
        records,
        now=frame["InvoiceDate"].max().to_pydatetime(),
        weights=settings.RECS_INTERACTION_WEIGHTS,
        half_life_days=settings.RECS_HALF_LIFE_DAYS,
        repeat_half_life_days=settings.RECS_REPEAT_HALF_LIFE_DAYS,
        item_text=titles,
        user_group={int(c): str(country) for c, country in countries.items()},
    )
    facts = {
        "invoices": frame["InvoiceNo"].nunique(),
        "interactions": len(records),
        "seconds": time.perf_counter() - started,
    }
    return data, facts


class Clock:
    """Wall and CPU seconds of a block."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall = time.perf_counter() - self.wall
        self.cpu = time.process_time() - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:5.1f} s ({self.cpu:.1f} s CPU)"


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    met = value <= target if at_most else value >= target
    return "OK" if met else "MISSED"


def run(until: datetime | None, export: Path | None, print_fn: Callable[[str], None]) -> None:
    from recommendations.recommenders import build
    from recommendations.recommenders.base import ml_threads
    from recommendations.recommenders.buy_again import BuyAgain
    from recommendations.recommenders.ease import EASE
    from recommendations.recommenders.evaluation import evaluate, window_split

    data, facts = retail_data(until)
    print_fn(
        f"  UCI Online Retail{f' until {until:%Y-%m-%d}' if until else ''}: {facts['invoices']:,}"
        f" invoices -> {facts['interactions']:,} interactions through the interaction builder, "
        f"{data.n_users:,} customers, {data.n_items:,} items ({facts['seconds']:.1f} s)"
    )
    with ml_threads():
        warm = window_split(data, days=TEST_DAYS)
        cold = window_split(data, days=TEST_DAYS, cold=True)
        repeat = window_split(data, days=TEST_DAYS, protocol="repeat")
        train = warm.train
        print_fn(
            f"  test window: the last {TEST_DAYS} days, {train.now:%Y-%m-%d %H:%M} to "
            f"{data.now:%Y-%m-%d %H:%M}; {len(warm.rows):,} customers took up new items "
            f"(discovery), {len(cold.rows)} of them new customers (cold start), "
            f"{len(repeat.rows):,} bought again (repeat)"
        )
        print_fn("  accuracy, discovery protocol, NDCG@10 (P@10 R@10 MAP@10 HR@10 coverage):")
        if until:
            print_fn("    (the anchors were measured on the full data's split, not this one)")

        def line(name: str, evaluation: Any, note: str) -> None:
            m = evaluation.metrics
            print_fn(
                f"    {name:<34} {m['ndcg']:.3f}  ({m['precision']:.3f} {m['recall']:.3f} "
                f"{m['map']:.3f} {m['hit_rate']:.3f} {evaluation.coverage:.3f})  {note}"
            )

        baselines = {}
        popularity = build("popularity", {"group_weight": 0.0}).fit(train)
        baselines["recent popularity"] = evaluate(popularity, warm)
        line("recent popularity (30 days)", baselines["recent popularity"], "anchor 0.083")
        with Clock() as als_clock:
            als = build("als").fit(train)
        baselines["ALS"] = evaluate(als, warm)
        line("implicit ALS (tuned on validation)", baselines["ALS"], f"anchor 0.098  {als_clock}")
        binary = replace(train, half_life_days=1e9)
        anchor_ease = EASE(l2=250.0, neighbours=data.n_items).fit(binary)  # all weights kept
        baselines["EASE"] = evaluate(anchor_ease, replace(warm, train=binary))
        line("EASE λ=250, no decay, all weights", baselines["EASE"], "anchor 0.101")
        content = build("content").fit(train)
        line("content TF-IDF on descriptions", evaluate(content, warm), "anchor 0.078")
        with Clock() as ease_clock:
            ease = build("ease").fit(train)
        line("EASE λ=250, 30-day decay, top 100", evaluate(ease, warm), f"{ease_clock}")
        with Clock() as train_clock:
            hybrid = build("hybrid").fit(train)
        ours = evaluate(hybrid, warm)
        best_name, best = max(
            ((n, e.metrics["ndcg"]) for n, e in baselines.items()), key=lambda p: p[1]
        )
        ndcg = ours.metrics["ndcg"]
        target = max(TARGET_NDCG, best) if until else TARGET_NDCG
        line(
            "hybrid (ours, serving)",
            ours,
            f"target >= {TARGET_NDCG}"
            + (f" and >= best baseline ({best_name} {best:.3f})" if until else "")
            + f"  {verdict(ndcg, target)}",
        )
        weights = ", ".join(f"{n} {w:g}" for n, w in hybrid.weights.items())
        print_fn(
            f"      blend tuned on the validation window ({hybrid.validation.get('people', 0)} "
            f"customers, NDCG@10 {hybrid.validation.get('ndcg_at_10', 0):.3f}): {weights}"
        )

        cold_ours = evaluate(hybrid, cold).metrics["ndcg"]
        cold_pop = evaluate(popularity, cold).metrics["ndcg"]
        print_fn(
            f"  cold start ({len(cold.rows)} new customers): recent popularity {cold_pop:.3f} "
            f"(anchor 0.102); ours {cold_ours:.3f} (popularity in their country, "
            f"{hybrid.cold_start.params['days']:g} days, group weight "
            f"{hybrid.cold_start.params['group_weight']:g})  target >= {TARGET_COLD}  "
            f"{verdict(cold_ours, TARGET_COLD)}"
        )

        own = evaluate(BuyAgain(recent_weight=0.0).fit(train), repeat).metrics["ndcg"]
        als_repeat = evaluate(als, replace(repeat, exclude=None)).metrics["ndcg"]
        buy_again = BuyAgain(tune=True).fit(train)
        again = evaluate(buy_again, repeat).metrics["ndcg"]
        print_fn(
            f"  buy again, repeats counted ({len(repeat.rows):,} customers): own most-bought "
            f"{own:.3f} (anchor 0.340), ALS {als_repeat:.3f} (anchor 0.319); ours {again:.3f} "
            f"(lift by the last {buy_again.params['recent_days']:g} days' popularity, weight "
            f"{buy_again.params['recent_weight']:g})  target >= {TARGET_REPEAT}  "
            f"{verdict(again, TARGET_REPEAT)}"
        )

        print_fn(
            f"  training the hybrid (validation fit, blend tuning, final fit): {train_clock}  "
            f"target < {TARGET_TRAIN_SECONDS:g} s  "
            f"{verdict(train_clock.wall, TARGET_TRAIN_SECONDS, at_most=True)}"
        )
        parts = ", ".join(f"{name} {seconds:.1f}" for name, seconds in hybrid.seconds.items())
        print_fn(f"      seconds per part: {parts}")
        _speed(hybrid, als, train, print_fn)
    if export is not None:
        _export(hybrid, train, export, print_fn)


def _speed(hybrid: Any, als: Any, train: Any, print_fn: Callable[[str], None]) -> None:
    import numpy as np

    everyone = train.histories()
    seen = train.matrix("sum")
    with Clock() as batch:
        for start in range(0, len(everyone), 2000):
            rows = list(range(start, min(start + 2000, len(everyone))))
            hybrid.recommend(everyone.select(rows), 10, seen[rows])
    rate = len(everyone) / batch.wall
    print_fn(
        f"  batch scoring, hybrid top-10 of {len(everyone):,} customers: {rate:,.0f} customers/s "
        f"({len(everyone) / max(batch.cpu, 1e-9):,.0f}/s of CPU time; {batch})  "
        f"target >= {TARGET_USERS_PER_SECOND:,.0f}/s  {verdict(rate, TARGET_USERS_PER_SECOND)}"
    )
    rng = np.random.default_rng(0)
    sample = rng.choice(len(everyone), 200, replace=False)
    ours, theirs, hybrid_times = [], [], []
    for row in sample:
        one = everyone.row(int(row))
        started = time.perf_counter()
        als.recommend(one, 10, seen[int(row)])
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        als.model.recommend(0, one.weighted, N=10, recalculate_user=True)
        theirs.append(time.perf_counter() - started)
        started = time.perf_counter()
        hybrid.recommend(one, 10, seen[int(row)])
        hybrid_times.append(time.perf_counter() - started)
    print_fn(
        "  one customer's top 10, p50/p99 ms: implicit's own ALS recommend "
        f"(recalculate_user) {_ms(theirs)}; our ALS {_ms(ours)}; our hybrid {_ms(hybrid_times)}"
    )
    print_fn(
        "  serving through the HTTP API (p99 cached/uncached at 32 connections, event to "
        "changed list): not measured by this bench yet"
    )


def _ms(times: list[float]) -> str:
    import numpy as np

    return f"{np.percentile(times, 50) * 1000:.1f}/{np.percentile(times, 99) * 1000:.1f}"


def _export(hybrid: Any, train: Any, path: Path, print_fn: Callable[[str], None]) -> None:
    """Top-10 `home` lists of every customer with purchases before the test window."""
    import csv

    import numpy as np

    everyone = train.histories()
    had = np.flatnonzero(np.asarray(everyone.weighted.getnnz(axis=1)) > 0)
    seen = train.matrix("sum")
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["user", "item", "rank"])
        for start in range(0, len(had), 2000):
            rows = had[start : start + 2000].tolist()
            lists = hybrid.recommend(everyone.select(rows), 10, seen[rows])
            for row, ranked in zip(rows, lists, strict=True):
                for rank, (item, _score) in enumerate(ranked, start=1):
                    writer.writerow([train.user_keys[row], train.item_keys[item], rank])
    print_fn(f"  exported the top-10 home lists of {len(had):,} customers to {path}")


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench recommendations")
    parser.add_argument("--until", type=datetime.fromisoformat, default=None)
    parser.add_argument("--export", type=Path, default=None)
    args = parser.parse_args(sys.argv[1:])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cdp.settings")
    import django

    django.setup()
    run(args.until, args.export, print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
