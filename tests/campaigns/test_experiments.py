"""Experiments through the real journey and delivery path: variants and control groups in the
definition (400s pointing at the node), sticky assignment, the control group and the
workspace holdout never sent, attribution windows, revenue, and results equal to counts made
independently from the delivery and event rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.utils import timezone

from campaigns import services
from campaigns.models import Delivery, Entry
from campaigns.results import campaign_results
from campaigns.services import experiments
from tests.campaigns.conftest import CART, ORDER, cart_reminder, person, track

pytestmark = pytest.mark.django_db


def _message(subject: str) -> dict[str, str]:
    return {"subject": subject, "text": f"{subject}, {{{{ profile.traits.first_name }}}}"}


def experiment(channel, *, allocation: str = "split", weights=(50, 50), **overrides) -> dict:
    """Send at once on every cart event, variants A and B (and what `overrides` add)."""
    send: dict[str, Any] = {
        "channel": channel.pk,
        "allocation": allocation,
        "variants": [
            {"name": name, "weight": weight, "message": _message(f"Subject {name}")}
            for name, weight in zip("AB", weights, strict=False)
        ],
    }
    body = cart_reminder(channel, entry="every_time", **overrides)
    body["steps"] = [{"send": send}]
    return body


def enter(source, profile, callbacks, *, at: dt.datetime | None = None) -> Delivery:
    """One cart event through the pipeline, its send run; the person's newest delivery."""
    with callbacks(execute=True):
        track(source, profile, CART, at=at or timezone.now())
    return Delivery.objects.filter(profile=profile).order_by("-pk").first()


# --- the definition --------------------------------------------------------------------------


def _send(body: dict) -> dict:
    return body["steps"][0]["send"]


def _variant(body: dict, index: int) -> dict:
    return _send(body)["variants"][index]


@pytest.mark.parametrize(
    ("change", "pointer"),
    [
        (lambda b: _variant(b, 1).update(name="A"), "/steps/0/send/variants/1/name"),
        (lambda b: _variant(b, 0)["message"].pop("subject"), "/steps/0/send/variants/0/message"),
        (lambda b: _send(b).update(message={"subject": "x", "text": "y"}), "/steps/0/send"),
        (lambda b: _send(b).update(allocation="greedy"), "/steps/0/send/allocation"),
        (lambda b: _send(b)["variants"].pop(), "/steps/0/send/variants"),
        (lambda b: [v.update(weight=0) for v in _send(b)["variants"]], "/steps/0/send/variants"),
        (
            lambda b: _variant(b, 0)["message"].update(subject="{% if %}"),
            "/steps/0/send/variants/0/message/subject",
        ),
        (lambda b: b["steps"].append(dict(b["steps"][0])), "/steps/1/send/variants"),
        (lambda b: b.update(control={"percent": 0}), "/control/percent"),
        (lambda b: b.update(control={"share": 10}), "/control"),
    ],
)
def test_an_invalid_experiment_is_a_400_pointing_at_the_node(
    admin_api, email_channel, change, pointer
):
    body = experiment(email_channel)
    change(body)
    response = admin_api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400, response.json()
    problems = [p for found in response.json().values() for p in found]
    assert pointer in [p["pointer"] for p in problems], problems


def test_a_message_step_may_not_name_an_allocation(admin_api, email_channel):
    body = cart_reminder(email_channel)
    body["steps"][1]["send"]["allocation"] = "bandit"
    response = admin_api.post("/api/v1/campaigns/", body, format="json")
    assert response.status_code == 400
    assert response.json()["steps"][0]["pointer"] == "/steps/1/send/allocation"


def test_variants_and_control_round_trip_through_the_api(admin_api, email_channel):
    body = experiment(email_channel, control={"percent": 10})
    created = admin_api.post("/api/v1/campaigns/", body, format="json").json()
    assert created["control"] == {"percent": 10}
    assert [v["name"] for v in created["steps"][0]["send"]["variants"]] == ["A", "B"]


# --- assignment ------------------------------------------------------------------------------


def test_each_person_gets_their_variants_message(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(experiment(email_channel))
    people = [person(email_address=f"p{n}@example.com") for n in range(16)]
    deliveries = [enter(source, p, django_capture_on_commit_callbacks) for p in people]
    assert {d.variant for d in deliveries} == {"A", "B"}
    for profile, delivery in zip(people, deliveries, strict=True):
        (mail,) = smtp.to(f"p{people.index(profile)}@example.com")
        assert mail["Subject"] == f"Subject {delivery.variant}"


def test_a_variant_is_kept_on_re_entry_even_after_the_weights_change(
    source, smtp, email_channel, make_campaign, admin_user, django_capture_on_commit_callbacks
):
    campaign = make_campaign(experiment(email_channel))
    ann = person(email_address="ann@example.com")
    first = enter(source, ann, django_capture_on_commit_callbacks)
    # The new version sends everyone new to the other variant; Ann keeps hers.
    other = "B" if first.variant == "A" else "A"
    weights = (0, 100) if other == "B" else (100, 0)
    changed = experiment(email_channel, weights=weights)
    definition = {key: changed[key] for key in ("trigger", "entry", "goal", "steps")}
    services.campaign_update(campaign=campaign, actor=admin_user, definition=definition)
    again = enter(source, ann, django_capture_on_commit_callbacks)
    newcomer = enter(
        source, person(email_address="new@example.com"), django_capture_on_commit_callbacks
    )
    assert again.pk != first.pk and again.version_id != first.version_id
    assert again.variant == first.variant
    assert newcomer.variant == other
    assert [m["Subject"] for m in smtp.to("ann@example.com")] == [f"Subject {first.variant}"] * 2


def test_a_retried_step_records_one_delivery_with_one_variant(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    make_campaign(experiment(email_channel))
    ann = person(email_address="ann@example.com")
    delivery = enter(source, ann, django_capture_on_commit_callbacks)
    entry = Entry.objects.get(profile=ann)
    # The engine runs the same step again (a task delivered twice): nothing new is recorded.
    Entry.objects.filter(pk=entry.pk).update(status="active", step_path=[0], due_at=timezone.now())
    services.entries_advance(entry_ids=[entry.pk])
    assert list(Delivery.objects.filter(profile=ann).values_list("pk", "variant")) == [
        (delivery.pk, delivery.variant)
    ]
    assert len(smtp.to("ann@example.com")) == 1


def test_the_split_follows_the_weights(email_channel, make_campaign):
    campaign = make_campaign(experiment(email_channel, weights=(80, 20)))
    version = campaign.versions.get()
    counts = {"A": 0, "B": 0}
    for _ in range(1000):
        entry = Entry(
            campaign=campaign,
            version=version,
            profile=person(),
            number=1,
            entered_at=timezone.now(),
        )
        counts[experiments.arm_assign(entry=entry).variant] += 1
    # Binomial(1000, 0.8): 800 ± 13 (sd); five sd either side.
    assert 735 <= counts["A"] <= 865


# --- control group and holdout ---------------------------------------------------------------


def _people_in_and_out_of_control(campaign, percent: float, n: int = 40):
    people = [person(email_address=f"c{i}@example.com") for i in range(n)]
    for i, profile in enumerate(people):
        profile.address = f"c{i}@example.com"
    inside = [
        p
        for p in people
        if experiments.in_control(campaign_id=campaign.pk, profile_id=p.pk, percent=percent)
    ]
    outside = [p for p in people if p not in inside]
    assert inside and outside
    return inside, outside


def test_the_control_group_enters_but_receives_nothing_and_still_converts(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(experiment(email_channel, control={"percent": 50}))
    inside, outside = _people_in_and_out_of_control(campaign, 50)
    held = enter(source, inside[0], django_capture_on_commit_callbacks)
    sent = enter(source, outside[0], django_capture_on_commit_callbacks)
    assert Entry.objects.filter(profile=inside[0]).exists()
    assert (held.is_control, held.status, held.skip_reason) == (True, "skipped", "control")
    assert held.would_send_at is not None and held.sent_at is None
    assert [m["To"] for m in smtp.messages] == [outside[0].address]
    assert sent.status == "sent" and not sent.is_control
    # Both order a day later: the control converts from its would-be send time.
    for profile, delivery in ((inside[0], held), (outside[0], sent)):
        moment = (delivery.would_send_at or delivery.sent_at) + dt.timedelta(days=1)
        track(source, profile, ORDER, at=moment, properties={"revenue": 40})
    results = campaign_results(campaign=campaign)
    assert results["control"]["recipients"] == 1 and results["control"]["converted"] == 1
    assert results["control"]["sent"] == 0 and results["control"]["revenue"] == 40
    converted = {v["name"]: v["converted"] for v in results["variants"]}
    assert converted[sent.variant] == 1


def test_the_control_group_is_kept_on_re_entry(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(experiment(email_channel, control={"percent": 50}))
    inside, _ = _people_in_and_out_of_control(campaign, 50, n=10)
    for _ in range(3):
        enter(source, inside[0], django_capture_on_commit_callbacks)
    rows = list(Delivery.objects.filter(profile=inside[0]).values_list("is_control", "skip_reason"))
    assert rows == [(True, "control")] * 3
    assert smtp.messages == []


def test_transactional_campaigns_keep_no_control_group(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(
        experiment(email_channel, kind="transactional", control={"percent": 50})
    )
    inside, _ = _people_in_and_out_of_control(campaign, 50, n=10)
    delivery = enter(source, inside[0], django_capture_on_commit_callbacks)
    assert delivery.status == "sent" and not delivery.is_control


def test_the_workspace_holdout_receives_no_marketing(
    source, smtp, email_channel, make_campaign, settings, django_capture_on_commit_callbacks
):
    settings.CAMPAIGN_HOLDOUT_PERCENT = 30
    campaign = make_campaign(experiment(email_channel))
    people = [person(email_address=f"h{i}@example.com") for i in range(30)]
    held = [p for p in people if experiments.in_holdout(profile_id=p.pk)]
    assert held and len(held) < len(people)
    for profile in people:
        enter(source, profile, django_capture_on_commit_callbacks)
    skipped = set(
        Delivery.objects.filter(skip_reason="holdout").values_list("profile_id", flat=True)
    )
    assert skipped == {p.pk for p in held}
    assert len(smtp.messages) == len(people) - len(held)
    # Holdout people are no arm of the campaign's experiment.
    results = campaign_results(campaign=campaign)
    assert sum(v["recipients"] for v in results["variants"]) == len(people) - len(held)


# --- attribution -----------------------------------------------------------------------------


def test_conversions_count_only_inside_the_goal_window_after_the_send(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(experiment(email_channel))  # goal: an order within 3 days
    outcomes = {}
    for label, offset in (("before", -1), ("inside", 2 * 24), ("edge", 72), ("late", 73)):
        profile = person(email_address=f"{label}@example.com")
        delivery = enter(source, profile, django_capture_on_commit_callbacks)
        at = delivery.sent_at + dt.timedelta(hours=offset)
        track(source, profile, ORDER, at=at, properties={"revenue": 10})
        outcomes[label] = delivery.variant
    results = campaign_results(campaign=campaign)
    converted = sum(v["converted"] for v in results["variants"])
    assert converted == 2  # "inside" and "edge" (exactly three days after)
    assert sum(v["revenue"] for v in results["variants"]) == 20


def test_a_conversion_is_credited_to_the_last_touch_and_revenue_sums(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    campaign = make_campaign(experiment(email_channel))
    ann = person(email_address="ann@example.com")
    start = timezone.now()
    first = enter(source, ann, django_capture_on_commit_callbacks)
    second = enter(source, ann, django_capture_on_commit_callbacks)
    assert second.sent_at > first.sent_at
    for hours, revenue in ((1, 19.5), (2, 30), (3, "n/a")):
        track(
            source,
            ann,
            ORDER,
            at=start + dt.timedelta(hours=hours),
            properties={"revenue": revenue},
        )
    results = campaign_results(campaign=campaign)
    arm = next(v for v in results["variants"] if v["name"] == first.variant)
    assert (arm["recipients"], arm["converted"], arm["revenue"]) == (1, 1, 49.5)


# --- results against the rows ----------------------------------------------------------------

COUNTED = ("recipients", "sent", "opened", "clicked", "converted", "revenue", "bot_clicked")


def test_results_equal_counts_made_from_the_rows(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    from campaigns.models import DeliveryEvent
    from profiles.models import Event

    campaign = make_campaign(experiment(email_channel, weights=(50, 50), control={"percent": 30}))
    people = [person(email_address=f"r{i}@example.com") for i in range(36)]
    for i, profile in enumerate(people):
        delivery = enter(source, profile, django_capture_on_commit_callbacks)
        touched = delivery.sent_at or delivery.would_send_at
        if i % 3 == 0:
            track(
                source,
                profile,
                ORDER,
                at=touched + dt.timedelta(hours=5),
                properties={"revenue": i},
            )
        if i % 4 == 0 and delivery.status == "sent":
            services.delivery_open_record(
                delivery_id=delivery.pk,
                user_agent="Mozilla/5.0 (X11) Firefox/140.0",
                now=delivery.sent_at + dt.timedelta(minutes=3),
            )
        if i % 5 == 0 and delivery.status == "sent":
            services.delivery_click_record(
                delivery_id=delivery.pk,
                url="https://shop.example.com/",
                user_agent="",
                now=delivery.sent_at + dt.timedelta(seconds=1),
            )  # a link scanner: counted apart
    results = campaign_results(campaign=campaign)

    # The same figures, counted straight from the rows.
    expected: dict[str, dict[str, Any]] = {}
    for delivery in Delivery.objects.filter(campaign=campaign):
        key = "control" if delivery.is_control else delivery.variant
        arm = expected.setdefault(key, dict.fromkeys(COUNTED, 0))
        arm["recipients"] += 1
        arm["sent"] += delivery.status == "sent"
        arm["opened"] += delivery.opened_at is not None
        arm["clicked"] += delivery.clicked_at is not None
        arm["bot_clicked"] += (
            DeliveryEvent.objects.filter(delivery=delivery, kind="click")
            .exclude(bot_reason="")
            .count()
        )
        touched = delivery.sent_at or delivery.would_send_at
        orders = Event.objects.filter(
            profile=delivery.profile,
            event=ORDER,
            timestamp__gte=touched,
            timestamp__lte=touched + dt.timedelta(days=3),
        )
        arm["converted"] += orders.exists()
        arm["revenue"] += sum(o.properties["revenue"] for o in orders)
    arms = {v["name"]: v for v in results["variants"]} | {"control": results["control"]}
    assert set(arms) == set(expected)
    for key, counts in expected.items():
        assert {k: arms[key][k] for k in counts} == counts, key
        rate = counts["converted"] / counts["recipients"]
        assert arms[key]["conversion_rate"] == pytest.approx(rate)
        assert arms[key]["ci95"][0] <= rate <= arms[key]["ci95"][1]
    assert sum(a["probability_best"] for a in arms.values()) == pytest.approx(1)
    assert arms["control"]["lift_vs_control"] is None and arms["control"]["p_value"] is None
    assert all(0 <= arms[k]["p_value"] <= 1 for k in ("A", "B"))
    assert results["decision"]


# --- the bandit ------------------------------------------------------------------------------


def test_the_bandit_sends_newcomers_toward_the_variant_that_converts(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    from campaigns import selectors

    campaign = make_campaign(experiment(email_channel, allocation="bandit"))
    first = []
    for i in range(40):
        profile = person(email_address=f"b{i}@example.com")
        delivery = enter(source, profile, django_capture_on_commit_callbacks)
        first.append(delivery.variant)
        if delivery.variant == "B":
            track(source, profile, ORDER, at=delivery.sent_at + dt.timedelta(hours=1))
    # Before any conversion the bandit knows nothing: both variants get people.
    assert 10 <= first.count("B") <= 30
    assert services.bandits_refresh() == 1
    shares = {
        row.variant: row.share for row in selectors.bandit_allocation_latest(campaign=campaign)
    }
    assert shares["B"] == pytest.approx(1 - experiments.stats.MIN_EXPLORATION_SHARE, abs=0.01)
    later = [
        enter(
            source, person(email_address=f"n{i}@example.com"), django_capture_on_commit_callbacks
        ).variant
        for i in range(30)
    ]
    assert later.count("B") >= 24
    # The allocation over time: the prior's, then the one after the conversions.
    assert selectors.bandit_allocations(campaign=campaign).count() == 4
    assert services.bandits_refresh() == 1  # the newcomers
    assert services.bandits_refresh() == 0  # nothing new: nothing recorded


# --- who may read results --------------------------------------------------------------------


def test_results_are_read_by_every_role_and_keys_with_the_read_scope(
    compliance,
    marketer,
    admin_user,
    no_role_user,
    api_client_with_scopes,
    email_channel,
    make_campaign,
):
    from rest_framework.test import APIClient

    campaign = make_campaign(experiment(email_channel, control={"percent": 10}))
    url = f"/api/v1/campaigns/{campaign.pk}/results/"
    for user in (compliance, marketer, admin_user):
        client = APIClient()
        client.force_authenticate(user)
        response = client.get(url)
        assert response.status_code == 200
        assert set(response.json()) == {"variants", "control", "decision"}
    nobody = APIClient()
    nobody.force_authenticate(no_role_user)
    assert nobody.get(url).status_code == 403
    assert APIClient().get(url).status_code in (401, 403)
    assert api_client_with_scopes("campaigns:read").get(url).status_code == 200
    assert api_client_with_scopes("campaigns:write").get(url).status_code == 403
    assert api_client_with_scopes("segments:read").get(url).status_code == 403
    assert (
        api_client_with_scopes("campaigns:read")
        .get("/api/v1/campaigns/999999/results/")
        .status_code
        == 404
    )


def test_the_results_page_and_the_dashboard_are_for_the_three_roles(
    client, staff_client, compliance, marketer, no_role_user, email_channel, make_campaign
):
    campaign = make_campaign(experiment(email_channel, allocation="bandit"))
    pages = (f"/campaigns/{campaign.pk}/results/", "/campaigns/dashboard/?days=7")
    for user in (compliance, marketer):
        signed_in = staff_client(user)
        for path in pages:
            assert signed_in.get(path).status_code == 200
    refused = staff_client(no_role_user)
    assert all(refused.get(path).status_code == 403 for path in pages)
    client.logout()
    assert all(client.get(path).status_code == 302 for path in pages)


def test_the_dashboard_counts_sends_clicks_opt_outs_and_credited_revenue_by_day_and_channel(
    source, smtp, email_channel, make_campaign, django_capture_on_commit_callbacks
):
    from campaigns.models import DeliveryEvent
    from campaigns.results import marketing_dashboard

    make_campaign(experiment(email_channel))
    sent = []
    for i in range(6):
        profile = person(email_address=f"d{i}@example.com")
        delivery = enter(source, profile, django_capture_on_commit_callbacks)
        sent.append(delivery)
        if i < 3:
            track(
                source,
                profile,
                ORDER,
                at=delivery.sent_at + dt.timedelta(hours=1),
                properties={"revenue": 30},
            )
    later = sent[0].sent_at + dt.timedelta(minutes=10)
    services.delivery_click_record(
        delivery_id=sent[0].pk,
        url="https://shop.example.com/",
        user_agent="Mozilla/5.0 (X11) Firefox/140.0",
        now=later,
    )
    services.delivery_click_record(
        delivery_id=sent[1].pk, url="https://shop.example.com/", user_agent="curl/8.0", now=later
    )
    DeliveryEvent.objects.create(delivery=sent[2], kind="unsubscribe", at=later)
    DeliveryEvent.objects.create(delivery=sent[3], kind="bounce", at=later)

    found = marketing_dashboard(since=sent[0].sent_at - dt.timedelta(days=1))
    (row,) = found["rows"]
    assert row["day"] == sent[0].sent_at.astimezone(dt.UTC).date().isoformat()
    assert row["channel"] == "email"
    assert (row["sent"], row["clicked"], row["unsubscribed"], row["bounced"]) == (6, 1, 1, 1)
    assert (row["converted"], row["revenue"]) == (3, 90)
    assert row["ctr"] == pytest.approx(1 / 6) and row["revenue_per_recipient"] == 15
    assert found["totals"]["sent"] == 6
