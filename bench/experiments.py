"""Experiments benchmark: the statistics that answer `GET /api/v1/campaigns/{id}/results/` and
allocate bandit campaigns, validated by simulation (issue 15), and the results query on rows.

Every figure comes from the functions the product runs (campaigns.stats): recipients are put
into arms by `arms_pick` with `split_shares` or `bandit_shares` (what
campaigns.services.experiments.arm_assign calls), and tests are decided by `always_valid_p`
(what campaigns.results.campaign_results calls), vectorised over many simulated experiments.
1. A/A: BENCH_EXPERIMENTS_AA tests at 10%, 50/50, looked at after every 100 recipients up to
   10,000: the share ever declared significant at alpha = 0.05, always-valid beside the naive
   z-test under the same peeking (target: always-valid ≤ 5%).
2. A/B, 10% against 12%: power at 10,000 recipients per arm (the same peeking; and the naive
   test looked at once, at the end, as the fixed-horizon baseline).
3. Bandit, three arms at 5%, 6%, 8%, 20,000 recipients, its posteriors refreshed after every
   100 (as beat refreshes them): the share sent to the best arm over the run and in the last
   1,000 (target ≥ 70%), and the regret (conversions lost against always sending the best)
   beside a fixed equal split's, averaged over BENCH_EXPERIMENTS_BANDITS runs.
4. Results on rows: a campaign of BENCH_EXPERIMENTS_PEOPLE people (two variants and a control
   group) is written to a dedicated database (`cdp_bench_experiments`, dropped and migrated
   first) with known conversions; `campaign_results` (the API's answer) is timed and its
   counts checked against what was written.

Environment: BENCH_EXPERIMENTS_AA (1000), BENCH_EXPERIMENTS_BANDITS (50),
BENCH_EXPERIMENTS_PEOPLE (20000), BENCH_EXPERIMENTS_DATABASE_URL
(postgres://postgres@127.0.0.1:5432/cdp_bench_experiments).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from bench import database_recreate

ROOT = Path(__file__).resolve().parent.parent
AA_TESTS = int(os.environ.get("BENCH_EXPERIMENTS_AA", "1000"))
BANDIT_RUNS = int(os.environ.get("BENCH_EXPERIMENTS_BANDITS", "50"))
PEOPLE = int(os.environ.get("BENCH_EXPERIMENTS_PEOPLE", "20000"))
DATABASE_URL = os.environ.get(
    "BENCH_EXPERIMENTS_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cdp_bench_experiments"
)
LOOK_EVERY = 100


def _peeking(rates: tuple[float, float], recipients: int, tests: int, seed: int):
    """Cumulative (converted, recipients) per arm at every look, for `tests` experiments whose
    recipients are split 50/50 by the product's assignment."""
    from campaigns import stats

    rng = np.random.default_rng(seed)
    looks = recipients // LOOK_EVERY
    arms = stats.arms_pick(rng.random((tests, looks, LOOK_EVERY)), stats.split_shares([50, 50]))
    in_b = (arms == 1).sum(axis=2)
    in_a = LOOK_EVERY - in_b
    converted_a = rng.binomial(in_a, rates[0]).cumsum(axis=1)
    converted_b = rng.binomial(in_b, rates[1]).cumsum(axis=1)
    return converted_a, in_a.cumsum(axis=1), converted_b, in_b.cumsum(axis=1)


def aa_tests() -> tuple[float, float]:
    from campaigns import stats

    xa, na, xb, nb = _peeking((0.10, 0.10), 10_000, AA_TESTS, seed=1)
    valid = (stats.always_valid_p(xa, na, xb, nb).min(axis=1) <= stats.ALPHA).mean()
    naive = (stats.naive_p(xa, na, xb, nb).min(axis=1) <= stats.ALPHA).mean()
    return float(valid), float(naive)


def ab_power() -> tuple[float, float]:
    from campaigns import stats

    xa, na, xb, nb = _peeking((0.10, 0.12), 20_000, AA_TESTS, seed=2)
    valid = (stats.always_valid_p(xa, na, xb, nb)[:, -1] <= stats.ALPHA).mean()
    once = stats.naive_p(xa[:, -1], na[:, -1], xb[:, -1], nb[:, -1])
    return float(valid), float((once <= stats.ALPHA).mean())


def bandit(rates=(0.05, 0.06, 0.08), recipients: int = 20_000) -> dict[str, float]:
    from campaigns import stats

    rng = np.random.default_rng(3)
    runs, arms = BANDIT_RUNS, len(rates)
    truth = np.array(rates)
    exposed = np.zeros((runs, arms))
    converted = np.zeros((runs, arms))
    last = np.zeros((runs, arms))
    for batch in range(recipients // LOOK_EVERY):
        _, shares = stats.bandit_shares(converted, exposed)
        units = rng.random((runs, LOOK_EVERY))
        picked = np.stack([stats.arms_pick(units[r], shares[r]) for r in range(runs)])
        counts = np.stack([np.bincount(row, minlength=arms) for row in picked])
        exposed += counts
        converted += rng.binomial(counts, truth)
        if batch >= recipients // LOOK_EVERY - 10:
            last += counts
    best = int(truth.argmax())
    regret = (exposed * (truth[best] - truth)).sum(axis=1)
    equal_regret = recipients * (truth[best] - truth.mean())
    return {
        "share_best": float((exposed[:, best] / recipients).mean()),
        "share_best_last": float((last[:, best] / last.sum(axis=1)).mean()),
        "regret": float(regret.mean()),
        "equal_regret": float(equal_regret),
        "conversions": float(converted.sum(axis=1).mean()),
        "equal_conversions": float(recipients * truth.mean()),
    }


def _results_child() -> None:
    """In a child process on the bench database: write a campaign's rows, time its results."""
    import datetime as dt

    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    from access.services import source_create
    from campaigns import services
    from campaigns.models import Channel, Delivery, Entry
    from campaigns.results import campaign_results
    from profiles.models import Event, Profile

    call_command("migrate", verbosity=0)
    source = source_create(name="bench").record
    channel = Channel.objects.create(kind="email", name="bench", config={"from": "b@example.com"})
    message = {"subject": "Hello", "text": "Hello"}
    campaign = services.campaign_create(
        name="Bench experiment",
        kind="marketing",
        definition={
            "trigger": {"event": "Product Added"},
            "goal": {"event": "Order Completed", "within": {"days": 3}},
            "control": {"percent": 10},
            "steps": [
                {
                    "send": {
                        "channel": channel.pk,
                        "variants": [
                            {"name": "A", "message": message},
                            {"name": "B", "message": message},
                        ],
                    }
                }
            ],
        },
        status="draft",
        actor=None,
    )
    version = campaign.versions.get()
    rng = np.random.default_rng(4)
    start = timezone.now() - dt.timedelta(days=10)
    profiles = Profile.objects.bulk_create([Profile() for _ in range(PEOPLE)], batch_size=5000)
    arm_of = rng.choice(["A", "B", "control"], size=PEOPLE, p=[0.45, 0.45, 0.10])
    rate = {"A": 0.10, "B": 0.12, "control": 0.08}
    entered = [start + dt.timedelta(seconds=int(s)) for s in rng.integers(0, 7 * 86400, PEOPLE)]
    entries = Entry.objects.bulk_create(
        [
            Entry(
                campaign=campaign,
                version=version,
                profile=p,
                number=1,
                entered_at=entered[i],
                status="completed",
            )
            for i, p in enumerate(profiles)
        ],
        batch_size=5000,
    )
    deliveries, events, truth = [], [], {"A": 0, "B": 0, "control": 0}
    for i, (profile, entry) in enumerate(zip(profiles, entries, strict=True)):
        arm = str(arm_of[i])
        control = arm == "control"
        deliveries.append(
            Delivery(
                campaign=campaign,
                version=version,
                entry=entry,
                profile=profile,
                step="/steps/0",
                channel=channel,
                variant="" if control else arm,
                is_control=control,
                status="skipped" if control else "sent",
                skip_reason="control" if control else "",
                sent_at=None if control else entered[i],
                would_send_at=entered[i] if control else None,
            )
        )
        if rng.random() < rate[arm]:
            truth[arm] += 1
            at = entered[i] + dt.timedelta(hours=float(rng.uniform(0, 72)))
            events.append(
                Event(
                    source=source,
                    profile=profile,
                    type="track",
                    event="Order Completed",
                    message_id=f"bench-{i}",
                    timestamp=at,
                    received_at=at,
                    properties={"revenue": 10},
                )
            )
    Delivery.objects.bulk_create(deliveries, batch_size=5000)
    Event.objects.bulk_create(events, batch_size=5000)
    started = time.perf_counter()
    found = campaign_results(campaign=campaign)
    elapsed = time.perf_counter() - started
    counted = {v["name"]: v["converted"] for v in found["variants"]}
    counted["control"] = found["control"]["converted"]
    print(f"results of a {PEOPLE:,}-person campaign (two variants, a control): {elapsed:.2f} s")
    print(f"  converted per arm: {counted}; written: {truth}; equal: {counted == truth}")
    print(f"  decision: {found['decision']}")
    sys.exit(0 if counted == truth else 1)


def main() -> int:
    started = time.perf_counter()
    valid, naive = aa_tests()
    print(
        f"A/A, {AA_TESTS:,} tests, a look every {LOOK_EVERY} recipients up to 10,000: ever "
        f"significant at 0.05: always-valid {valid:.1%} (target ≤ 5%), naive z-test {naive:.1%}"
    )
    power, fixed = ab_power()
    print(
        f"A/B 10% vs 12%, 10,000 per arm: power {power:.1%} always-valid with peeking "
        f"(naive test looked at once, at the end: {fixed:.1%})"
    )
    figures = bandit()
    print(
        f"bandit 5%/6%/8%, 20,000 recipients, {BANDIT_RUNS} runs: to the best arm "
        f"{figures['share_best']:.1%} over the run, {figures['share_best_last']:.1%} of the last "
        f"1,000 (target ≥ 70%); regret {figures['regret']:.0f} conversions vs "
        f"{figures['equal_regret']:.0f} for an equal split "
        f"({figures['conversions']:.0f} vs {figures['equal_conversions']:.0f} conversions)"
    )
    print(f"simulations: {time.perf_counter() - started:.1f} s")
    database_recreate(DATABASE_URL)
    child = subprocess.run(
        [sys.executable, "-c", "from bench.experiments import _results_child; _results_child()"],
        cwd=ROOT,
        env={**os.environ, "DATABASE_URL": DATABASE_URL, "DJANGO_SETTINGS_MODULE": "cdp.settings"},
        check=False,
    )
    failed = valid > 0.05 or figures["share_best_last"] < 0.7 or child.returncode != 0
    return 1 if failed else 0
