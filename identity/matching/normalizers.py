"""Normalizers: one value in, one normalized string out ("" means missing)."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from typing import Any

_NOT_LETTER = re.compile(r"[^\w\s]|[\d_]", re.UNICODE)
_NOT_ALNUM = re.compile(r"[\W_]+", re.UNICODE)
_SPACES = re.compile(r"\s+")
SEPARATOR = "\x1f"
_MISSING = {"", "null", "none", "nan", "n/a", "-", "unknown"}  # not "na": a surname


def is_missing(value: Any) -> bool:
    """Whether a trait value stands for no value (None, NaN, "", "null", "n/a", ...)."""
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return isinstance(value, str) and value.strip().casefold() in _MISSING


def text_fold(value: Any) -> str:
    """NFKC, case-fold, strip accents (é → e, ß → ss), punctuation to spaces, single spaces."""
    if is_missing(value):
        return ""
    text = str(value)
    if text.isascii():
        text = text.lower()
    else:
        text = unicodedata.normalize("NFKC", text).casefold()
        text = "".join(
            c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)
        )
    text = _NOT_ALNUM.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def name_normalize(value: Any) -> str:
    """A personal name: folded, digits and punctuation dropped, hyphens and spaces removed
    (so "Lillie-Hinrichs", "lillie hinrichs" and "LillieHinrichs" agree)."""
    folded = text_fold(value)
    return _NOT_LETTER.sub("", folded).replace(" ", "")


def postcode_normalize(value: Any) -> str:
    """Upper-case letters and digits only: "sw1a 1aa" → "SW1A1AA", "2119.0" → "2119"."""
    if is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = unicodedata.normalize("NFKC", str(value)).upper()
    return _NOT_ALNUM.sub("", text)


def id_normalize(value: Any) -> str:
    """An identifier compared fuzzily (CRM id, national id): letters and digits, folded."""
    if is_missing(value):
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", str(value)).casefold())


def email_fold(value: Any) -> str:
    """Lower-cased, trimmed email; fuzzy comparison only (exact identity has its own rules)."""
    if is_missing(value):
        return ""
    text = unicodedata.normalize("NFKC", str(value)).strip().casefold()
    return text if "@" in text else ""


def phone_digits(value: Any) -> str:
    """The last nine digits of a phone number: enough to tell people apart, blind to the
    country-code and trunk-prefix variants of the same number."""
    if is_missing(value):
        return ""
    digits = re.sub(r"\D", "", str(value))
    return digits[-9:] if len(digits) >= 6 else ""


_DATE_PATTERNS = (
    re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})"),  # ISO date or datetime
    re.compile(r"^(\d{4})/(\d{1,2})/(\d{1,2})\Z"),
    re.compile(r"^(\d{4})(\d{2})(\d{2})\Z"),  # 19560409
)
_DMY = re.compile(r"^(\d{1,2})[./-](\d{1,2})[./-](\d{4})\Z")


def date_normalize(value: Any) -> str:
    """A date of birth as "YYYYMMDD" ("" when unreadable). Day-first for d/m/y input.
    Out-of-range parts are kept as typed: a typo'd month is still evidence."""
    if is_missing(value):
        return ""
    text = str(value).strip()
    if isinstance(value, float) and value.is_integer():
        text = str(int(value))
    for pattern in _DATE_PATTERNS:
        match = pattern.match(text)
        if match:
            y, m, d = match.groups()
            return f"{int(y):04d}{int(m):02d}{int(d):02d}"
    match = _DMY.match(text)
    if match:
        d, m, y = match.groups()
        return f"{int(y):04d}{int(m):02d}{int(d):02d}"
    return ""


def street_split(value: Any) -> tuple[str, str]:
    """("12a", "main street") from "12A Main Street"; the house number is compared apart."""
    return street_split_folded(text_fold(value))


_HOUSE_NUMBER = re.compile(r"^(\d+[a-z]?)\s*(.*)\Z")
# Much of Europe writes the number last: "Hauptstraße 12", "Rue de la Paix 4b".
_HOUSE_NUMBER_LAST = re.compile(r"^(.*\D)\s(\d+[a-z]?)\Z")


def street_split_folded(folded: str) -> tuple[str, str]:
    """(house number, street name) of a street already folded by `text_fold`."""
    match = _HOUSE_NUMBER.match(folded)
    if match:
        return match.group(1), match.group(2).replace(" ", "")
    match = _HOUSE_NUMBER_LAST.match(folded)
    if match:
        return match.group(2), match.group(1).replace(" ", "")
    return "", folded.replace(" ", "")


# Countries written other ways than their ISO code: "UK" is GB's common name, and a few
# English forms the names below leave out.
_COUNTRY_ALIASES = {"uk": "GB", "england": "GB", "scotland": "GB", "wales": "GB"}
_COUNTRY_ALIASES |= {"usa": "US", "u s a": "US", "u s": "US", "america": "US"}
_COUNTRY_NAME_LANGUAGES = ("en", "de", "fr", "es", "it", "nl", "pt")


@functools.cache
def _country_names() -> dict[str, str]:
    """Folded country name (in a few languages) or ISO 3166 alpha-2 code → the code, from
    the region names phonenumbers ships."""
    import phonenumbers
    from phonenumbers import geocoder

    names: dict[str, str] = {}
    for region in phonenumbers.SUPPORTED_REGIONS:
        names[region.lower()] = region
        example = phonenumbers.example_number(region)
        if example is None:
            continue
        for language in _COUNTRY_NAME_LANGUAGES:
            name = text_fold(geocoder.country_name_for_number(example, language))
            if name:
                names.setdefault(name, region)
    return names | _COUNTRY_ALIASES


def country_normalize(value: Any) -> str:
    """A country as its ISO alpha-2 code ("Deutschland", "germany", "DE" → "DE"); text that
    names no known country stays folded, so equal spellings still agree."""
    folded = text_fold(value)
    return _country_names().get(folded, folded) if folded else ""


# A small nickname table: given names that are the same person. Keys and values normalized.
NICKNAMES: dict[str, str] = {
    nick: full
    for full, nicks in {
        "robert": "bob bobby rob robbie bert",
        "william": "bill billy will willy liam",
        "richard": "rick ricky dick rich richie",
        "james": "jim jimmy jamie",
        "john": "jack johnny jon",
        "jonathan": "jon jonny",
        "michael": "mike mikey mick micky",
        "elizabeth": "liz lizzie beth betty eliza libby",
        "margaret": "maggie meg peggy marge",
        "katherine": "kate katie kathy kat kathryn catherine cathy",
        "christopher": "chris kit",
        "christine": "chris chrissy tina",
        "daniel": "dan danny",
        "david": "dave davey",
        "edward": "ed eddie ted ned",
        "thomas": "tom tommy",
        "joseph": "joe joey",
        "charles": "charlie chuck chas",
        "anthony": "tony",
        "nicholas": "nick nicky",
        "matthew": "matt matty",
        "andrew": "andy drew",
        "alexander": "alex sasha xander",
        "alexandra": "alex sandra lexi",
        "benjamin": "ben benny",
        "samuel": "sam sammy",
        "samantha": "sam sammie",
        "stephen": "steve stevie",
        "steven": "steve stevie",
        "patricia": "pat patty trish",
        "patrick": "pat paddy",
        "jennifer": "jen jenny",
        "jessica": "jess jessie",
        "rebecca": "becky becca",
        "victoria": "vicky tori",
        "susan": "sue susie",
        "deborah": "deb debbie",
        "timothy": "tim timmy",
        "gregory": "greg",
        "peter": "pete",
        "frederick": "fred freddie",
        "henry": "harry hank",
        "lawrence": "larry",
        "kimberly": "kim",
        "abigail": "abby",
        "isabella": "bella izzy",
        "isabelle": "izzy belle",
        "joshua": "josh",
        "zachary": "zach zack",
        "nathan": "nate",
        "nathaniel": "nate nat",
        "jacob": "jake",
        "madeline": "maddie",
        "madison": "maddie",
        "olivia": "liv livvy",
        "josephine": "jo josie",
        "eleanor": "ellie nora",
        "dorothy": "dot dottie",
    }.items()
    for nick in nicks.split()
}


def name_canonical(name: str) -> str:
    """The canonical given name for a nickname ("bob" → "robert"), else the name itself."""
    return NICKNAMES.get(name, name)
