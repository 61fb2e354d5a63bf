"""Answering "what should this person see?": reads only (the serving run's saved artifact,
the person's interactions through the consent gate, the catalog), then the business rules.

Slots:
- `home`: personal (the serving model, the person's history folded in at request time);
  a person without history gets the cold-start list (recent popularity in their group);
- `similar`: items like the current page's item (`page_item`);
- `cart`: complements of what the person added to their cart in the last week and did not
  buy since ("bought together");
- `buy_again`: the person's own purchases, lifted by what sells now;
- `trending`: items taking off, overall, in the `category` given, or among the members of
  the `segment` given (read live from the interactions table: segments change between
  trainings).

A person who does not allow `personalization` gets non-personal lists only (recent
popularity; trending), whatever the slot: their history is not read at all. Answers are
cached (recommendations.cache) and invalidated by the person's new events, a new serving
model, new rules and catalog changes. Before any model has been trained, lists come from the
interactions table directly (recent popularity; a person's own purchases for `buy_again`).
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q
from django.utils import timezone

from profiles.models import Profile
from profiles.selectors import profile_survivor
from recommendations import cache
from recommendations.interactions import naive_utc
from recommendations.models import IN_STOCK, Availability, Item, ModelRun, RuleSet
from recommendations.recommenders.artifacts import ArtifactFormatError, Bundle, bundle_load
from recommendations.recommenders.base import Reason
from recommendations.rules import Candidate, Rules, rules_apply
from recommendations.selectors import (
    Person,
    ServedItem,
    Subject,
    personalization_allowed,
    profile_history,
    rule_set_current,
    segment_trending,
    served_items,
    serving_person,
    serving_person_get,
    serving_subject,
    serving_subject_by_identity,
)
from segments.selectors import segment_get

logger = logging.getLogger(__name__)

SLOTS = ("home", "similar", "cart", "buy_again", "trending")
PERSONAL_SLOTS = ("home", "cart", "buy_again")
MAX_K = 100
CART_DAYS = 7
POPULAR_DAYS = 30
# Candidates scored before the rules: enough that filters rarely leave a list short.
POOL_FACTOR = 5


class UnknownItem(LookupError):
    pass


class SlotNeedsItem(ValueError):
    pass


@dataclass(frozen=True)
class Request:
    """What a caller asks for; `category`, `brands`, `price_*` narrow the list; `category`
    also re-ranks towards the page's category and names it in reasons."""

    slot: str = "home"
    k: int = 10
    page_item: str = ""
    category: str = ""
    brands: tuple[str, ...] = ()
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    segment: int | None = None  # `trending` among this segment's members
    # The context boosts' conditions (rules): the visitor's device type ("" for the person's
    # last known one) and local hour (None: unknown).
    device: str = ""
    hour: int | None = None

    def key(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["price_min"] = str(self.price_min) if self.price_min is not None else None
        raw["price_max"] = str(self.price_max) if self.price_max is not None else None
        return raw


@dataclass
class Answer:
    slot: str
    personal: bool
    model_run: int | None
    rules_version: int | None
    items: list[dict[str, Any]] = field(default_factory=list)
    cached: bool = False


# Artifacts loaded by this process, by run id: requests only read saved artifacts, and a
# bundle is read from the database once per process and run.
_LOADED: dict[int, Bundle] = {}
_LOCK = threading.Lock()


def serving_bundle() -> tuple[int, Bundle] | None:
    run_id = ModelRun.objects.filter(is_serving=True).values_list("pk", flat=True).first()
    if run_id is None:
        return None
    bundle = _LOADED.get(run_id)
    if bundle is None:
        # One load per process (~0.6 s of CPU for Online Retail's hybrid): the threads asking
        # meanwhile wait for it instead of each loading its own copy.
        with _LOCK:
            bundle = _LOADED.get(run_id)
            if bundle is None:
                bundle = _bundle_read(run_id)
                if bundle is None:
                    return None
                _LOADED.clear()  # one serving model at a time: drop the one it replaced
                _LOADED[run_id] = bundle
                # Out of the collector, as cdp/wsgi.py does with what a web process loads at
                # start: a full collection walked the model's Python objects (item keys,
                # indexes, the text vocabulary) while holding every request thread.
                gc.collect()
                gc.freeze()
    return run_id, bundle


def _bundle_read(run_id: int) -> Bundle | None:
    raw = ModelRun.objects.filter(pk=run_id).values_list("artifact", flat=True).first()
    if not raw:
        return None
    try:
        return bundle_load(bytes(raw))
    except ArtifactFormatError:
        logger.warning("serving run %s has an unreadable artifact; lists fall back", run_id)
        return None


def recommendations_for_profile(*, profile: Profile, request: Request) -> Answer:
    """The list for one person and slot (see the module docstring)."""
    profile = profile_survivor(profile=profile)
    if not personalization_allowed(profile=profile):
        return recommendations_anonymous(request=request)
    subject = Subject(profile.pk, personalization_allowed=True)
    return _cached_answer(subject, request, serving_person(profile=profile))


def recommendations_for_profile_id(*, profile_id: int, request: Request) -> Answer | None:
    """`recommendations_for_profile` for the profile with this id (None: there is none), with
    one query before a cached answer: the API's path, asked per page view."""
    subject = serving_subject(profile_id=profile_id)
    return _subject_answer(subject, request) if subject is not None else None


def recommendations_for_identifier(*, kind: str, value: str, request: Request) -> Answer:
    """The list for the visitor a shop's front end names by `user_id` or `anonymous_id`:
    their profile's (merges followed), or the non-personal list for a visitor not seen yet;
    one query before a cached answer, as by profile id."""
    subject = serving_subject_by_identity(kind=kind, value=value)
    if subject is None:
        return recommendations_anonymous(request=request)
    return _subject_answer(subject, request)


def _subject_answer(subject: Subject, request: Request) -> Answer:
    if not subject.personalization_allowed:
        return recommendations_anonymous(request=request)
    return _cached_answer(subject, request)


def recommendations_anonymous(*, request: Request) -> Answer:
    """A list built from nobody's data: a visitor not seen yet, or the similar items of an
    item page (the same for everyone)."""
    return _cached_answer(None, request)


def _cached_answer(
    subject: Subject | None, request: Request, person: Person | None = None
) -> Answer:
    """The answer for `subject` (a person who allows personalization), or nobody's."""
    profile_id = subject.profile_id if subject is not None else None
    # Keyed by the request as asked: the page item names its category, so a hit needs no query.
    lookup = cache.list_lookup(
        profile_id=profile_id, request={"personal": profile_id is not None, **request.key()}
    )
    if lookup.found is not None:
        return Answer(**{**lookup.found, "cached": True})
    if profile_id is not None and person is None:
        person = serving_person_get(profile_id=profile_id)
        if person is None:  # deleted since it was asked for
            return recommendations_anonymous(request=request)
    if request.slot != "similar" and request.page_item:
        request = _with_page_category(request)
    answer = _answer(subject, person, request, _serving_state(lookup.catalog_version))
    # The answer's own fields, not a deep copy (asdict): the cache serialises it anyway.
    cache.list_store(lookup, dict(vars(answer)))
    return answer


@dataclass(frozen=True)
class _State:
    """What every answer reads besides the person: the serving run, its model, the rules."""

    loaded: tuple[int, Bundle] | None
    rule_set: RuleSet | None


# Per catalog version token (recommendations.cache): a new serving run and new rules each
# replace the token, so a process reads them once per token instead of per answer. (While the
# cache is down every answer has a token of its own, and reads them.)
_STATES: dict[str, _State] = {}


def _serving_state(catalog_version: str) -> _State:
    state = _STATES.get(catalog_version)
    if state is None:
        state = _State(loaded=serving_bundle(), rule_set=rule_set_current())
        with _LOCK:
            _STATES.clear()
            _STATES[catalog_version] = state
    return state


def _with_page_category(request: Request) -> Request:
    if request.category:
        return request
    category = Item.objects.filter(external_id=request.page_item).values_list("category", flat=True)
    return Request(**{**asdict(request), "category": category.first() or ""})


@dataclass
class _Scored:
    """Scores over the bundle's items and how to word each item's reason."""

    scores: Any
    explain: Any  # (item indexes) -> [Reason, ...]
    exclude: set[str]


def _answer(
    subject: Subject | None, person: Person | None, request: Request, state: _State
) -> Answer:
    rule_set, loaded = state.rule_set, state.loaded
    rules = Rules.from_rule_set(
        rule_set.rules if rule_set else {},
        # "Trending in Kitchen" is a filter; elsewhere the page's category re-ranks.
        categories=(request.category,) if request.category and request.slot == "trending" else (),
        brands=request.brands,
        price_min=request.price_min,
        price_max=request.price_max,
        context_category=request.category,
        device=request.device or (person.device if person is not None else ""),
        hour=request.hour,
    )
    history = profile_history(subject=subject) if subject is not None else []
    answer = Answer(
        slot=request.slot,
        personal=person is not None and request.slot in PERSONAL_SLOTS,
        model_run=loaded[0] if loaded else None,
        rules_version=rule_set.version if rule_set else None,
    )
    if request.slot == "trending" and request.segment is not None:
        candidates = _segment_trending_candidates(request.segment, request.k)
    elif loaded is None:
        candidates = _live_candidates(history, request)
    else:
        bundle = loaded[1]
        group = person.group if person is not None else ""
        scored = _score(bundle, history, group, request)
        candidates = _candidates(bundle, scored, request.k)
        rules = replace(rules, exclude=frozenset(scored.exclude))
    chosen = rules_apply(candidates, rules, request.k)
    answer.items = _rows(chosen, history, request)
    return answer


def _history_rows(
    history: Sequence[tuple[str, str, datetime]], kinds: Sequence[str], since: datetime | None
) -> list[tuple[str, str, datetime]]:
    return [h for h in history if h[1] in kinds and (since is None or h[2] >= since)]


def _score(bundle: Bundle, history: list, group: str, request: Request) -> _Scored:
    import numpy as np

    now = timezone.now()
    index = bundle.item_index()
    purchased = {h[0] for h in history if h[1] == "purchase"}
    full = bundle.history(history, now=now, group=group)
    slot = request.slot
    if slot == "similar":
        position = index.get(request.page_item)
        similar = (
            bundle.model.similar_items(position, MAX_K * POOL_FACTOR)
            if position is not None
            else []
        )
        if position is not None and not similar:
            similar = bundle.content.similar_items(position, MAX_K * POOL_FACTOR)
        scores = np.full(len(bundle.item_keys), -np.inf)
        for item, score in similar:
            scores[item] = score
        if not similar:  # an item the model has not seen: popular items of its category
            scores = bundle.popularity.item_scores("")
        page = request.page_item
        return _Scored(
            scores,
            lambda items: [
                Reason("similar_to", item=position) if similar else Reason("popular") for _ in items
            ],
            purchased | {page},
        )
    if slot == "trending":
        trending = bundle.trending.item_scores("")
        return _Scored(trending, lambda items: [Reason("trending") for _ in items], set())
    if slot == "buy_again":
        # The person's own purchases only, never a popular fallback: nobody is asked to buy
        # again what they never bought.
        scores = bundle.buy_again.scores(full)[0]
        scores[scores <= 0] = -np.inf
        return _Scored(
            scores, lambda items: [Reason("bought_before", item=i) for i in items], set()
        )
    if not history:
        popular = bundle.popularity.item_scores(group)
        return _Scored(popular, lambda items: bundle.popularity.explain_many(full, 0, items), set())
    if slot == "cart":
        since = naive_utc(now) - timedelta(days=CART_DAYS)
        bought = {h[0]: h[2] for h in _history_rows(history, ["purchase"], since)}
        cart = [
            h
            for h in _history_rows(history, ["cart"], since)
            if h[0] not in bought or bought[h[0]] < h[2]
        ]
        if cart:
            basket = bundle.history(cart, now=now, group=group)
            scores, explain = bundle.model.scores_explained(basket)
            return _Scored(
                scores, lambda items: _goes_with(explain(items)), purchased | {h[0] for h in cart}
            )
        popular = bundle.popularity.item_scores(group)
        return _Scored(
            popular, lambda items: bundle.popularity.explain_many(full, 0, items), purchased
        )
    scores, explain = bundle.model.scores_explained(full)
    return _Scored(scores, explain, purchased)


def _goes_with(reasons: list[Reason]) -> list[Reason]:
    """Reasons of a cart's complements: an item related to one in the cart goes with it."""
    return [
        Reason("goes_with", item=r.item) if r.code in ("because", "similar_to") else r
        for r in reasons
    ]


def _candidates(bundle: Bundle, scored: _Scored, k: int) -> list[Candidate]:
    import numpy as np

    scores = np.asarray(scored.scores, dtype=np.float64)
    pool = min(len(scores), k * POOL_FACTOR + len(scored.exclude))
    if pool == 0:
        return []
    best = np.argpartition(-scores, pool - 1)[:pool]
    best = best[np.argsort(-scores[best], kind="stable")]
    # What the slot excludes (e.g. what the person bought) is never shown: not read either.
    finite = [
        int(i) for i in best if np.isfinite(scores[i]) and bundle.item_keys[i] not in scored.exclude
    ]
    keys = [bundle.item_keys[i] for i in finite]
    items = served_items(keys)
    # Reasons for the candidates likely to be shown: the best ones in stock.
    worded = [
        int(i)
        for i, key in zip(finite, keys, strict=True)
        if key in items and items[key].availability in IN_STOCK
    ][: k * 2]
    reasons = dict(zip(worded, scored.explain(worded), strict=True))
    return [
        _candidate(items[key], float(scores[i]), reasons.get(int(i)), bundle.item_keys)
        for i, key in zip(finite, keys, strict=True)
        if key in items  # not deleted from the catalog since the model was trained
    ]


def _candidate(
    item: ServedItem | Item, score: float, reason: Reason | None, keys: Sequence[str]
) -> Candidate:
    related = keys[reason.item] if reason is not None and reason.item is not None else ""
    return Candidate(
        key=item.external_id,
        score=score,
        category=item.category,
        brand=item.brand,
        price=item.price,
        in_stock=item.availability in IN_STOCK,
        reason=_encode(reason, related),
    )


def _encode(reason: Reason | None, related: str) -> tuple[str, str, str]:
    """A reason as a candidate carries it: code, the related item's key, the group."""
    if reason is None:
        return ("recommended", "", "")
    return (reason.code, related, reason.group)


def _live_candidates(history: list, request: Request) -> list[Candidate]:
    """Before any model is trained: recent popularity from the interactions table, or the
    person's own purchases for `buy_again`."""
    pool = request.k * POOL_FACTOR
    if request.slot == "buy_again":
        counts: dict[str, int] = {}
        for key, kind, _at in history:
            if kind == "purchase":
                counts[key] = counts.get(key, 0) + 1
        bought = Item.objects.in_bulk(list(counts), field_name="external_id")
        return [
            _candidate(bought[k], float(n), Reason("bought_before", item=None), [])
            for k, n in sorted(counts.items(), key=lambda kv: -kv[1])
            if k in bought
        ][:pool]
    if request.slot in ("home", "cart", "trending") or not request.page_item:
        since = timezone.now() - timedelta(days=POPULAR_DAYS)
        lately = Q(interactions__occurred_at__gte=since)
        people = Count("interactions__event__profile", distinct=True, filter=lately)
        popular = Item.objects.annotate(people=people).filter(people__gt=0)
    else:
        category = Item.objects.filter(external_id=request.page_item).values("category")[:1]
        popular = (
            Item.objects.filter(category__in=category)
            .exclude(external_id=request.page_item)
            .annotate(people=Count("interactions__event__profile", distinct=True))
        )
    ranked = popular.exclude(availability=Availability.DISCONTINUED).order_by("-people", "-id")
    return [_candidate(item, float(item.people), Reason("popular"), []) for item in ranked[:pool]]


def _segment_trending_candidates(segment_id: int, k: int) -> list[Candidate]:
    segment = segment_get(segment_id=segment_id)
    if segment is None:
        return []
    scores = segment_trending(segment=segment)
    keys = list(scores)[: k * POOL_FACTOR]
    items = Item.objects.in_bulk(keys, field_name="external_id")
    reason = Reason("trending", group=segment.name)
    return [_candidate(items[key], scores[key], reason, []) for key in keys if key in items]


_KIND_WORDS = {"view": "viewed", "cart": "added", "purchase": "bought"}


def _rows(chosen: Sequence[Candidate], history: list, request: Request) -> list[dict[str, Any]]:
    kinds: dict[str, str] = {}
    for key, kind, _at in history:
        strongest = kinds.get(key)
        if strongest is None or list(_KIND_WORDS).index(kind) > list(_KIND_WORDS).index(strongest):
            kinds[key] = kind
    # The items shown and the ones their reasons name, in one read.
    items = served_items(
        [c.key for c in chosen] + [c.reason[1] for c in chosen] + [request.page_item]
    )
    titles = {key: item.title for key, item in items.items()}
    rows = []
    for c in chosen:
        item = items[c.key]
        rows.append(
            {
                "external_id": item.external_id,
                "title": item.title,
                "url": item.url,
                "image_url": item.image_url,
                "price": str(item.price) if item.price is not None else None,
                "currency": item.currency,
                "category": item.category,
                "score": round(c.score, 6),
                "reason": _words(c.reason, titles, kinds, request),
            }
        )
    return rows


def _words(
    reason: tuple[str, str, str], titles: dict[str, str], kinds: dict[str, str], request: Request
) -> str:
    """A short reason in words: "because you viewed Blue mug", "popular in Kitchen"."""
    code, related, group = reason
    name = titles.get(related) or related
    where = request.category.split(" > ")[-1] if request.category else ""
    if code == "because" and name:
        return f"because you {_KIND_WORDS.get(kinds.get(related, ''), 'liked')} {name}"
    if code == "similar_to" and name:
        return f"similar to {name}"
    if code == "goes_with" and name:
        return f"goes with {name} in your cart"
    if code == "bought_before":
        return "you bought this before"
    if code == "trending":
        where = group or where
        return f"trending in {where} this week" if where else "trending this week"
    if code == "popular_in_group" and group:
        return f"popular in {group} this month"
    if code in ("popular", "popular_in_group"):
        return f"popular in {where} this month" if where else "popular this month"
    return "recommended for you"
