"""A small shop where full names collide: 400 customers drawn from 24 first and 20 last names
(so most names are shared), each with their own email, phone, birthday and street address in one
of 8 cities, and 20 of them registered a second time, with a typo or another email.

The matcher must merge those 20 pairs and no pair of namesakes. Used by the identity tests and
by `python -m bench identity`, with seeds of their own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

# fmt: off
FIRST_NAMES = ("Anna", "Maria", "Emma", "Laura", "Sarah", "Julia", "Lena", "Sophie", "Grace",
               "Clara", "Emily", "Hannah", "James", "John", "David", "Michael", "Thomas",
               "Daniel", "Peter", "Paul", "Lukas", "Felix", "Max", "Jonas")
LAST_NAMES = ("Smith", "Jones", "Brown", "Miller", "Fischer", "Schmidt", "Müller", "Weber",
              "Martin", "Bernard", "Dubois", "Murphy", "Kelly", "Garcia", "Rossi", "Jansen",
              "Novak", "Taylor", "Wilson", "Meyer")
# fmt: on
# city, country, phone country code, postcode pattern (# a digit), number before street?,
# streets
CITIES = (
    ("London", "GB", "44", "SW1A #AA", True, ("High Street", "Station Road", "Church Lane")),
    ("Manchester", "GB", "44", "M1 #AE", True, ("Queen Street", "Mill Lane", "Park Road")),
    ("Paris", "FR", "33", "750##", False, ("Rue de la Paix", "Rue du Moulin", "Rue des Lilas")),
    ("Lyon", "FR", "33", "690##", False, ("Rue Victor Hugo", "Rue Centrale", "Quai Perrache")),
    ("Berlin", "DE", "49", "10###", False, ("Hauptstraße", "Schulstraße", "Gartenstraße")),
    ("Hamburg", "DE", "49", "20###", False, ("Bahnhofstraße", "Lindenweg", "Bergstraße")),
    ("Dublin", "IE", "353", "D0# X##", True, ("Main Street", "Church Road", "Green Lane")),
    ("Amsterdam", "NL", "31", "10## AB", False, ("Kerkstraat", "Dorpsstraat", "Molenweg")),
)
PEOPLE = 400
TWICE = 20
DOMAINS = ("example.com", "example.net", "example.org", "mail.example.com")


@dataclass(frozen=True)
class SmallShop:
    """Profiles' traits in creation order, and the person each profile is."""

    traits: list[dict[str, Any]]
    person: list[int]

    def true_pairs(self) -> set[tuple[int, int]]:
        """Pairs of profile positions that are one person."""
        first: dict[int, int] = {}
        pairs = set()
        for position, who in enumerate(self.person):
            if who in first:
                pairs.add((first[who], position))
            first.setdefault(who, position)
        return pairs


def _typo(rng: random.Random, word: str) -> str:
    """One keyboard slip inside the word: two letters swapped, one dropped or doubled."""
    i = rng.randint(1, len(word) - 2)
    kind = rng.choice(("swap", "drop", "double"))
    if kind == "swap":
        return word[:i] + word[i + 1] + word[i] + word[i + 2 :]
    if kind == "drop":
        return word[:i] + word[i + 1 :]
    return word[:i] + word[i] + word[i:]


def _ascii(name: str) -> str:
    return name.lower().replace("ü", "ue")


def _digits(rng: random.Random, pattern: str) -> str:
    return "".join(str(rng.randint(0, 9)) if ch == "#" else ch for ch in pattern)


def small_shop(*, seed: int) -> SmallShop:
    """The shop for one seed: the same seed, the same profiles."""
    rng = random.Random(f"small-shop:{seed}")
    emails: set[str] = set()
    phones: set[str] = set()
    people = []
    for _ in range(PEOPLE):
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        city, country, code, postcode, number_first, streets = rng.choice(CITIES)
        number, street = rng.randint(1, 150), rng.choice(streets)
        email = ""
        while not email or email in emails:
            local = rng.choice(
                (f"{_ascii(first)}.{_ascii(last)}", f"{_ascii(first)[0]}{_ascii(last)}")
            )
            email = f"{local}{rng.randint(1, 999)}@{rng.choice(DOMAINS)}"
        phone = ""
        while not phone or phone in phones:
            phone = f"+{code} {rng.randint(6, 7)}{rng.randint(10_000_000, 99_999_999)}"
        emails.add(email)
        phones.add(phone)
        people.append(
            {
                "firstName": first,
                "lastName": last,
                "email": email,
                "phone": phone,
                "birthday": (date(1940, 1, 1) + timedelta(days=rng.randint(0, 24_000))).isoformat(),
                "address": {
                    "street": f"{number} {street}" if number_first else f"{street} {number}",
                    "city": city,
                    "postalCode": _digits(rng, postcode),
                    "country": country,
                },
            }
        )
    traits = list(people)
    person = list(range(PEOPLE))
    for who in rng.sample(range(PEOPLE), TWICE):
        again = {**people[who], "address": dict(people[who]["address"])}
        if rng.random() < 0.5:  # a typo in a name (and so a new account)
            name = rng.choice(("firstName", "lastName"))
            again[name] = _typo(rng, again[name])
            local, domain = again["email"].split("@")
            again["email"] = f"{_typo(rng, local)}@{domain}"
        else:  # another email, the name as it was
            again["email"] = f"{_ascii(again['lastName'])}{rng.randint(1, 99)}@work.example"
        if rng.random() < 0.5:
            del again["phone"]  # not given the second time
        if rng.random() < 0.3:
            again["address"]["street"] = again["address"]["street"].replace("Street", "St")
        traits.append(again)
        person.append(who)
    return SmallShop(traits, person)


def crowd(*, count: int, seed: int = 0) -> list[dict[str, Any]]:
    """`count` different customers of a small shop (none registered twice), for tests whose
    own few profiles need company: below `identity.linkage.MIN_AUTO_MERGE_PROFILES` profiles
    nothing merges automatically."""
    assert count <= PEOPLE
    return small_shop(seed=seed).traits[:count]
