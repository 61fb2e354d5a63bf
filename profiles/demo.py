"""Demo data: a realistic online shop, generated deterministically from a seed.

`demo_messages` produces Segment-spec message dicts (identify, page and the e-commerce track
events) for N people over the last ~120 days; `demo_seed` sends them through the same ingestion
service as real traffic, so the pipeline builds the profiles exactly as it would in production.

What the data holds, so later stages have something real to find:
- a catalog of 200 products in 10 categories, with text descriptions (content recommenders);
- people with latent category preferences and a price sensitivity that drive what they view,
  add and buy (collaborative recommenders, propensity models, clustering);
- anonymous browsing before `identify` joins the anonymousId to the userId, and a second device
  that is joined at the next login (exact identity);
- about 5% of people registered twice, with a typo in the name or another email and no shared
  exact identifier (fuzzy identity resolution; `demo_registered_twice` lists them);
- consent choices in `context.consent.categoryPreferences`, Segment's shape, some changed later;
- a little crawler traffic (bot flagging).

Every random draw comes from `random.Random` seeded by (seed, person index), so person i is the
same whatever N is, and message ids repeat for the same seed: re-seeding is deduplicated.
"""

from __future__ import annotations

import math
import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import phonenumbers

from profiles import demo_vocabulary as vocab
from profiles.features import ORDER_COMPLETED

HISTORY_DAYS = 120
# Received time spans this many days (see demo_received_at).
RECEIVED_DAYS = 30
SHOP_URL = "https://shop.example.com"
CURRENCY = "USD"
# Segment's consent categories (context.consent.categoryPreferences).
CONSENT_CATEGORIES = ("Functional", "Analytics", "Advertising", "DataSharing")


@dataclass(frozen=True)
class Product:
    product_id: str
    sku: str
    name: str
    brand: str
    category: str
    category_slug: str
    price: float
    description: str
    # Within-category popularity weight (Zipf by rank): a few products sell much more.
    popularity: float

    @property
    def url(self) -> str:
        return f"{SHOP_URL}/p/{self.product_id}"

    def as_properties(self) -> dict[str, Any]:
        """The product in Segment's e-commerce spec shape."""
        return {
            "product_id": self.product_id,
            "sku": self.sku,
            "name": self.name,
            "brand": self.brand,
            "category": self.category,
            "price": self.price,
            "currency": CURRENCY,
            "url": self.url,
        }


@dataclass
class Person:
    index: int
    user_id: str
    gender: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    birthday: date
    address: dict[str, str]
    country_code: str
    # Latent taste: a probability per category, and how strongly price puts them off (0..1).
    preferences: list[float]
    price_sensitivity: float
    consent: dict[str, bool]
    # Never identifies: an anonymous visitor only.
    anonymous_only: bool = False
    duplicate_of: int | None = None
    devices: list[tuple[str, str]] = field(default_factory=list)  # (anonymousId, user agent)

    def traits(self) -> dict[str, Any]:
        traits: dict[str, Any] = {
            "firstName": self.first_name,
            "lastName": self.last_name,
            "email": self.email,
            "birthday": self.birthday.isoformat(),
            "gender": self.gender,
            "address": dict(self.address),
        }
        if self.phone:
            traits["phone"] = self.phone
        return traits


def demo_catalog(*, seed: int) -> list[Product]:
    """200 products in 10 categories; the same seed gives the same catalog."""
    rng = random.Random(f"catalog:{seed}")
    products: list[Product] = []
    for cat_index, (
        category,
        slug,
        (low, high),
        nouns,
        adjectives,
        brands,
        features,
        blurb,
    ) in enumerate(vocab.CATEGORIES):
        pairs = [(adj, noun) for adj in adjectives for noun in nouns]
        rng.shuffle(pairs)
        for rank, (adjective, noun) in enumerate(pairs[: vocab.PRODUCTS_PER_CATEGORY]):
            brand = rng.choice(brands)
            # Log-uniform prices, shop-style endings.
            raw = math.exp(rng.uniform(math.log(low), math.log(high)))
            price = max(1, round(raw)) - 0.01
            chosen = rng.sample(features, 3)
            description = (
                f"The {adjective.lower()} {noun.lower()} from {brand}, with {chosen[0]}, "
                f"{chosen[1]} and {chosen[2]}. {blurb}"
            )
            number = cat_index * 100 + rank + 1
            products.append(
                Product(
                    product_id=f"P{number:04d}",
                    sku=f"{slug[:3].upper()}-{number:04d}",
                    name=f"{brand} {adjective} {noun}",
                    brand=brand,
                    category=category,
                    category_slug=slug,
                    price=price,
                    description=description,
                    popularity=1.0 / (rank + 1) ** 0.8,
                )
            )
    return products


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _weighted(rng: random.Random, options: tuple[tuple[Any, float], ...]) -> Any:
    return rng.choices([o for o, _ in options], weights=[w for _, w in options])[0]


def _ascii(text: str) -> str:
    table = str.maketrans(
        {
            "ä": "ae",
            "ö": "oe",
            "ü": "ue",
            "ß": "ss",
            "é": "e",
            "è": "e",
            "ç": "c",
            "í": "i",
            "á": "a",
            "ó": "o",
            "'": "",
            " ": "",
        }
    )
    return text.lower().translate(table)


def _email(rng: random.Random, first: str, last: str) -> str:
    first_a, last_a = _ascii(first), _ascii(last)
    local = rng.choice(
        (
            f"{first_a}.{last_a}",
            f"{first_a[0]}{last_a}",
            f"{first_a}{last_a}",
            f"{first_a}.{last_a}{rng.randint(1, 99)}",
            f"{first_a}{rng.randint(70, 2005)}",
        )
    )
    return f"{local}@{rng.choice(vocab.EMAIL_DOMAINS)}"


def _pattern(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randint(0, 9)) if ch == "#" else ch for ch in pattern)


def _phone(rng: random.Random, region: str, area: str) -> str:
    """A number that `phonenumbers` accepts as valid, written as locals write it."""
    country_code = phonenumbers.country_code_for_region(region)
    for _ in range(50):
        national = area + "".join(str(rng.randint(0, 9)) for _ in range(10 - len(area)))
        if region in {"DE", "FR", "NL", "GB"} and len(area) < 3:
            national = area + "".join(str(rng.randint(0, 9)) for _ in range(8))
        number = phonenumbers.parse(f"+{country_code}{national}")
        if phonenumbers.is_valid_number(number):
            style = (
                phonenumbers.PhoneNumberFormat.NATIONAL
                if region == "US"
                else phonenumbers.PhoneNumberFormat.INTERNATIONAL
            )
            return phonenumbers.format_number(number, style)
    return ""


def _typo(rng: random.Random, name: str) -> str:
    """One keyboard slip: a swapped, dropped or doubled letter."""
    if len(name) < 4:
        return name + name[-1]
    i = rng.randint(1, len(name) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return name[:i] + name[i + 1] + name[i] + name[i + 2 :]
    if kind == "drop":
        return name[:i] + name[i + 1 :]
    return name[:i] + name[i] + name[i:]


def _devices(rng: random.Random, count: int) -> list[tuple[str, str]]:
    return [(_uuid(rng), _weighted(rng, vocab.USER_AGENTS)) for _ in range(count)]


def demo_person(*, seed: int, index: int) -> Person:
    """Person `index` of the demo population; independent of how many people are generated."""
    rng = random.Random(f"person:{seed}:{index}")
    gender = _weighted(rng, (("female", 0.49), ("male", 0.48), ("non-binary", 0.03)))
    first = rng.choice(vocab.FIRST_NAMES[gender])
    last = rng.choice(vocab.LAST_NAMES)
    country, region, _, cities, streets = rng.choices(
        vocab.COUNTRIES, weights=[c[2] for c in vocab.COUNTRIES]
    )[0]
    city, postal_pattern, area = rng.choice(cities)
    address = {
        "street": f"{rng.randint(1, 240)} {rng.choice(streets)}"
        if region in {"US", "GB", "CA"}
        else f"{rng.choice(streets)} {rng.randint(1, 140)}",
        "city": city,
        "postalCode": _pattern(rng, postal_pattern),
        "country": country,
    }
    today = date(2026, 1, 1)
    birthday = today - timedelta(days=rng.randint(18 * 365, 78 * 365))
    # 1-3 favourite categories hold most of the taste; the rest is a thin tail.
    favourites = rng.sample(range(len(vocab.CATEGORIES)), rng.choice((1, 2, 2, 3)))
    raw = [rng.uniform(0.0, 0.08) for _ in vocab.CATEGORIES]
    for rank, cat in enumerate(favourites):
        raw[cat] += rng.uniform(0.6, 1.0) / (rank + 1)
    total = sum(raw)
    analytics = rng.random() < 0.78
    consent = {
        "Functional": True,
        "Analytics": analytics,
        "Advertising": analytics and rng.random() < 0.62,
        "DataSharing": rng.random() < 0.30,
    }
    return Person(
        index=index,
        user_id=f"usr_{rng.getrandbits(48):012x}",
        gender=gender,
        first_name=first,
        last_name=last,
        email=_email(rng, first, last),
        phone=_phone(rng, region, area) if rng.random() < 0.7 else None,
        birthday=birthday,
        address=address,
        country_code=region,
        preferences=[r / total for r in raw],
        price_sensitivity=min(1.0, max(0.0, rng.betavariate(2, 2.5))),
        consent=consent,
        anonymous_only=rng.random() < 0.10,
        devices=_devices(rng, 2 if rng.random() < 0.35 else 1),
    )


def demo_duplicate(*, person: Person, seed: int) -> Person:
    """The same human registered again: a typo or another email, no shared exact identifier."""
    rng = random.Random(f"duplicate:{seed}:{person.index}")
    twin = Person(
        index=person.index,
        user_id=f"usr_{rng.getrandbits(48):012x}",
        gender=person.gender,
        first_name=person.first_name,
        last_name=person.last_name,
        email=person.email,
        phone=None,  # a phone is an exact identifier: sharing it would make this no duplicate
        birthday=person.birthday,
        address=dict(person.address),
        country_code=person.country_code,
        preferences=person.preferences,
        price_sensitivity=person.price_sensitivity,
        consent=dict(person.consent),
        duplicate_of=person.index,
        devices=_devices(rng, 1),
    )
    if rng.random() < 0.5:
        if rng.random() < 0.5:
            twin.first_name = _typo(rng, person.first_name)
        else:
            twin.last_name = _typo(rng, person.last_name)
        twin.address["street"] = (
            twin.address["street"].replace("Street", "St").replace("straße", "str.")
        )
    local = _email(rng, twin.first_name, twin.last_name)
    while local == person.email:
        local = _email(rng, twin.first_name, twin.last_name)
    twin.email = local
    return twin


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _SessionWriter:
    """Builds the messages of one person's sessions, keeping ids and identity state."""

    def __init__(self, *, rng: random.Random, person: Person, catalog: list[Product]) -> None:
        self.rng = rng
        self.person = person
        self.catalog = catalog
        self.by_category: dict[str, list[Product]] = {}
        for product in catalog:
            self.by_category.setdefault(product.category, []).append(product)
        self.categories = [c[0] for c in vocab.CATEGORIES]
        self.identified = False
        # Devices whose browser knows the userId (after a sign-up or login there).
        self.logged_in: set[str] = set()
        self.consent = dict(person.consent)
        self.orders = 0

    # -- message envelopes -------------------------------------------------------------
    def _context(self, *, device: tuple[str, str], page: dict[str, str], extra: dict) -> dict:
        context: dict[str, Any] = {
            "library": {"name": "analytics.js", "version": "next-1.84.3"},
            "userAgent": device[1],
            "ip": extra["ip"],
            "locale": vocab.LOCALES[self.person.country_code],
            "timezone": vocab.TIMEZONES[self.person.country_code],
            "page": page,
            "consent": {"categoryPreferences": dict(self.consent)},
        }
        if extra.get("campaign"):
            context["campaign"] = dict(extra["campaign"])
        return context

    def _message(self, kind: str, moment: datetime, device: tuple[str, str], **body: Any) -> dict:
        message: dict[str, Any] = {
            "type": kind,
            "messageId": _uuid(self.rng),
            "anonymousId": device[0],
            "timestamp": _iso(moment),
            **body,
        }
        if device[0] in self.logged_in:
            message["userId"] = self.person.user_id
        return message

    def _page(self, moment, device, extra, *, path: str, title: str, name: str) -> dict:
        page = {
            "path": path,
            "url": f"{SHOP_URL}{path}",
            "title": title,
            "referrer": extra.get("referrer", ""),
            "search": "",
        }
        extra["page"] = page
        return self._message(
            "page",
            moment,
            device,
            name=name,
            properties=dict(page),
            context=self._context(device=device, page=page, extra=extra),
        )

    def _track(self, moment, device, extra, event: str, properties: dict) -> dict:
        return self._message(
            "track",
            moment,
            device,
            event=event,
            properties=properties,
            context=self._context(device=device, page=extra["page"], extra=extra),
        )

    def _identify(self, moment, device, extra, *, with_traits: bool) -> dict:
        self.identified = True
        self.logged_in.add(device[0])
        body: dict[str, Any] = {
            "context": self._context(device=device, page=extra["page"], extra=extra)
        }
        if with_traits:
            body["traits"] = self.person.traits()
        return self._message("identify", moment, device, **body)

    # -- behaviour -----------------------------------------------------------------------
    def _pick_product(self) -> Product:
        rng, person = self.rng, self.person
        if rng.random() < 0.85:
            category = rng.choices(self.categories, weights=person.preferences)[0]
        else:
            category = rng.choice(self.categories)
        products = self.by_category[category]
        median = sorted(p.price for p in products)[len(products) // 2]
        weights = [
            p.popularity * math.exp(-2.5 * person.price_sensitivity * (p.price / median - 1))
            for p in products
        ]
        return rng.choices(products, weights=weights)[0]

    def session(self, *, start: datetime, device: tuple[str, str], signup: bool) -> list[dict]:
        """One visit: landing page, product views, maybe cart, checkout and order.

        An identified person logs in on a device they have not used yet; `signup` makes an
        anonymous visitor register right after landing (others register at their first checkout).
        """
        rng, person = self.rng, self.person
        messages: list[dict] = []
        moment = start
        extra: dict[str, Any] = {
            "ip": f"203.0.113.{(person.index * 7 + rng.randint(0, 3)) % 254 + 1}",
            "referrer": _weighted(rng, vocab.REFERRERS),
        }
        if rng.random() < 0.15:
            extra["campaign"] = rng.choice(vocab.CAMPAIGNS)
        if self.identified is False and rng.random() < 0.05 and person.consent["Analytics"]:
            # A change of mind in the consent banner, kept for the rest of their visits.
            self.consent["Advertising"] = not self.consent["Advertising"]

        def tick(low: int = 8, high: int = 150) -> datetime:
            nonlocal moment
            moment = moment + timedelta(seconds=rng.randint(low, high))
            return moment

        messages.append(self._page(moment, device, extra, path="/", title="Demo Shop", name="Home"))
        extra.pop("referrer", None)
        if self.identified and device[0] not in self.logged_in:
            messages.append(self._identify(tick(5, 30), device, extra, with_traits=False))
        elif signup and not self.identified and not person.anonymous_only:
            messages.append(self._identify(tick(5, 30), device, extra, with_traits=True))
        cart: list[tuple[Product, int]] = []
        for position in range(rng.choice((1, 1, 2, 2, 3, 3, 4, 5))):
            product = self._pick_product()
            messages.append(
                self._page(
                    tick(),
                    device,
                    extra,
                    path=f"/p/{product.product_id}",
                    title=f"{product.name} | Demo Shop",
                    name="Product",
                )
            )
            messages.append(
                self._track(
                    tick(1, 3),
                    device,
                    extra,
                    "Product Viewed",
                    {**product.as_properties(), "position": position + 1},
                )
            )
            liking = person.preferences[self.categories.index(product.category)] / max(
                person.preferences
            )
            if rng.random() < 0.08 + 0.32 * liking:
                quantity = 2 if rng.random() < 0.1 else 1
                cart.append((product, quantity))
                messages.append(
                    self._track(
                        tick(5, 40),
                        device,
                        extra,
                        "Product Added",
                        {**product.as_properties(), "quantity": quantity},
                    )
                )
        if not cart or person.anonymous_only or rng.random() > 0.55:
            return messages
        if not self.identified:
            # Signing up at checkout: identify joins this browser's anonymousId to the user.
            messages.append(self._identify(tick(20, 90), device, extra, with_traits=True))
        value = round(sum(p.price * q for p, q in cart), 2)
        lines = [{**p.as_properties(), "quantity": q} for p, q in cart]
        checkout_id = _uuid(rng)
        messages.append(
            self._page(tick(), device, extra, path="/checkout", title="Checkout", name="Checkout")
        )
        messages.append(
            self._track(
                tick(1, 3),
                device,
                extra,
                "Checkout Started",
                {
                    "checkout_id": checkout_id,
                    "value": value,
                    "currency": CURRENCY,
                    "products": lines,
                },
            )
        )
        # Price-sensitive people abandon expensive carts more often.
        completes = 0.8 - 0.35 * person.price_sensitivity * min(1.0, value / 300)
        if rng.random() > completes:
            return messages
        self.orders += 1
        shipping = 0.0 if value >= 75 else 5.95
        tax = round(value * 0.08, 2)
        messages.append(
            self._track(
                tick(30, 240),
                device,
                extra,
                ORDER_COMPLETED,
                {
                    "order_id": f"ORD-{person.user_id[4:10].upper()}-{self.orders:03d}",
                    "checkout_id": checkout_id,
                    "total": round(value + shipping + tax, 2),
                    "revenue": value,
                    "shipping": shipping,
                    "tax": tax,
                    "currency": CURRENCY,
                    "products": lines,
                },
            )
        )
        return messages


def _person_messages(*, person: Person, catalog: list[Product], seed: int, now: datetime):
    rng = random.Random(f"sessions:{seed}:{person.index}:{person.duplicate_of is not None}")
    writer = _SessionWriter(rng=rng, person=person, catalog=catalog)
    first_day = rng.uniform(2, HISTORY_DAYS)
    # Activity varies a lot: most people visit a few times, some are regulars.
    sessions = 1 + min(14, int(rng.expovariate(1 / 2.6)))
    starts = []
    for _ in range(sessions):
        day = now - timedelta(days=rng.uniform(0, first_day))
        # Daytime visits, mostly afternoons and evenings; never in the future.
        start = day.replace(hour=min(23, max(7, int(rng.gauss(15, 4)))), minute=rng.randint(0, 59))
        starts.append(min(start, now - timedelta(minutes=45)))
    starts.sort()
    messages: list[dict] = []
    signup_at = rng.randint(0, sessions - 1) if rng.random() < 0.5 else None
    if person.duplicate_of is not None:
        signup_at = 0  # the second registration is the point of a duplicate
    for number, start in enumerate(starts):
        # Most visits come from the main device; every third from the second one, if any.
        device = person.devices[0] if number % 3 != 2 else person.devices[-1]
        messages.extend(writer.session(start=start, device=device, signup=number == signup_at))
    if writer.identified and rng.random() < 0.06:
        # A move: a later identify with a new address (late trait updates).
        moved = dict(person.address)
        moved["street"] = f"{rng.randint(1, 99)} {moved['street'].split(' ', 1)[-1]}"
        moment = now - timedelta(days=rng.uniform(0, 3))
        messages.append(
            {
                "type": "identify",
                "messageId": _uuid(rng),
                "userId": person.user_id,
                "anonymousId": person.devices[0][0],
                "timestamp": _iso(moment),
                "traits": {"address": moved},
                "context": {
                    "library": {"name": "analytics.js", "version": "next-1.84.3"},
                    "consent": {"categoryPreferences": dict(writer.consent)},
                },
            }
        )
    return messages, writer.orders


def _bot_messages(*, seed: int, count: int, catalog: list[Product], now: datetime):
    rng = random.Random(f"bots:{seed}")
    for _ in range(count):
        product = rng.choice(catalog)
        moment = now - timedelta(days=rng.uniform(0, HISTORY_DAYS))
        path = f"/p/{product.product_id}"
        page = {
            "path": path,
            "url": f"{SHOP_URL}{path}",
            "title": product.name,
            "referrer": "",
            "search": "",
        }
        yield {
            "type": "page",
            "messageId": _uuid(rng),
            "anonymousId": _uuid(rng),
            "timestamp": _iso(moment),
            "name": "Product",
            "properties": dict(page),
            "context": {
                "userAgent": rng.choice(vocab.BOT_USER_AGENTS),
                "page": page,
                "library": {"name": "analytics.js", "version": "next-1.84.3"},
            },
        }


@dataclass
class DemoStats:
    people: int = 0
    duplicates: int = 0
    messages: int = 0
    orders: int = 0
    by_type: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    # What ingestion said: stored, already there (same message id), quarantined.
    accepted: int = 0
    already_stored: int = 0
    quarantined: int = 0


def demo_people(*, profiles: int, seed: int) -> Iterator[Person]:
    """The demo's people in order, each followed by their second registration if they made
    one (`duplicate_of` set, the same `index`)."""
    for index in range(profiles):
        person = demo_person(seed=seed, index=index)
        yield person
        if not person.anonymous_only and random.Random(f"dup:{seed}:{index}").random() < 0.05:
            yield demo_duplicate(person=person, seed=seed)


def demo_registered_twice(*, profiles: int, seed: int) -> list[tuple[str, str]]:
    """(first user id, second user id) of each demo person who registered twice, with no
    identifier in common: the pairs the fuzzy matcher should merge, and the only ones."""
    first: dict[int, str] = {}
    pairs = []
    for one in demo_people(profiles=profiles, seed=seed):
        if one.duplicate_of is None:
            first[one.index] = one.user_id
        else:
            pairs.append((first[one.index], one.user_id))
    return pairs


def demo_messages(
    *, profiles: int, seed: int, now: datetime, stats: DemoStats | None = None
) -> Iterator[dict]:
    """Segment-spec messages for `profiles` people, one person's history at a time."""
    catalog = demo_catalog(seed=seed)
    stats = stats if stats is not None else DemoStats()
    # Two people with the same name can draw the same address: an email (and phone) is one
    # person's exact identifier, so a later person whose draw is taken gets a numbered one.
    emails: set[str] = set()
    phones: set[str] = set()
    for one in demo_people(profiles=profiles, seed=seed):
        if one.duplicate_of is None:
            stats.people += 1
        else:
            stats.duplicates += 1
        if one.email in emails:
            local, domain = one.email.split("@")
            one.email = f"{local}.{one.index}@{domain}"
        if one.phone in phones:
            one.phone = None
        emails.add(one.email)
        if one.phone:
            phones.add(one.phone)
        messages, orders = _person_messages(person=one, catalog=catalog, seed=seed, now=now)
        stats.orders += orders
        for message in messages:
            stats.messages += 1
            stats.by_type[message["type"]] = stats.by_type.get(message["type"], 0) + 1
            yield message
    # About one crawler hit per 40 people.
    for message in _bot_messages(seed=seed, count=max(1, profiles // 40), catalog=catalog, now=now):
        stats.messages += 1
        stats.by_type["page"] = stats.by_type.get("page", 0) + 1
        yield message


def demo_received_at(message: dict, *, now: datetime) -> datetime:
    """When the demo server received a message: a few seconds after it happened, as an SDK
    sends it, except that what happened before the last RECEIVED_DAYS came in on that first
    day (the shop's history, imported when it started using the CDP). So the dashboard's
    received-time charts show a shop's daily rhythm, not one spike at seeding time."""
    happened = datetime.fromisoformat(message["timestamp"].replace("Z", "+00:00"))
    delay = timedelta(seconds=1 + int(message["messageId"][-4:], 16) % 20)
    return min(max(happened, now - timedelta(days=RECEIVED_DAYS)) + delay, now)


def demo_seed(
    *, source: Any, profiles: int, seed: int, now: datetime | None = None, batch_size: int = 200
) -> DemoStats:
    """Send the demo shop's history through the ingestion service, in batches as an SDK would,
    each received when `demo_received_at` says (batches of one hour of received time).

    Processing into profiles is the pipeline's job: inline without REDIS_URL, else the workers.
    """
    from django.utils import timezone

    from profiles.ingestion import ingest_messages

    now = now or timezone.now()
    stats = DemoStats()
    started = time.monotonic()
    timed = sorted(
        (demo_received_at(message, now=now), number, message)
        for number, message in enumerate(
            demo_messages(profiles=profiles, seed=seed, now=now, stats=stats)
        )
    )

    def send(batch: list[dict], received_at: datetime) -> None:
        result = ingest_messages(source=source, messages=batch, received_at=received_at)
        stats.accepted += result.accepted
        stats.already_stored += result.duplicates
        stats.quarantined += result.quarantined

    batch: list[dict] = []
    hour, last = None, now
    for received_at, _, message in timed:
        this_hour = received_at.replace(minute=0, second=0, microsecond=0)
        if batch and (len(batch) >= batch_size or this_hour != hour):
            send(batch, last)
            batch = []
        batch.append(message)
        hour, last = this_hour, received_at
    if batch:
        send(batch, last)
    stats.seconds = time.monotonic() - started
    return stats
