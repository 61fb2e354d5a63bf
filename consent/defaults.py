"""The default purposes and category mapping: installed by migration 0002, and put back by
`defaults_install()` when the tables were emptied (a flushed test database, a wiped install),
so the consent gate never fails for a purpose the platform itself relies on."""

from typing import Any

from consent.context_signals import DEFAULT_CATEGORY_MAPPING

# (code, name, description, legal basis, granted by default)
DEFAULT_PURPOSES = [
    (
        "analytics",
        "Analytics",
        "Measuring how the website and apps are used, to improve them.",
        "legitimate_interest",
        True,
    ),
    (
        "personalization",
        "Personalisation",
        "Tailoring content and recommendations to the person's behaviour; training models.",
        "legitimate_interest",
        True,
    ),
    (
        "email_marketing",
        "Email marketing",
        "Sending marketing email (soft opt-in for existing customers until they object).",
        "legitimate_interest",
        True,
    ),
    (
        "push",
        "Push notifications",
        "Sending push notifications to the person's devices.",
        "legitimate_interest",
        True,
    ),
    (
        "advertising",
        "Advertising",
        "Sharing audiences with advertising platforms and personalised ads.",
        "consent",
        False,
    ),
]


def defaults_install(purpose_model: Any, mapping_model: Any) -> None:
    """Create the missing defaults; rows that exist (maybe edited by operators) are kept."""
    for code, name, description, basis, default in DEFAULT_PURPOSES:
        purpose_model.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "description": description,
                "legal_basis": basis,
                "granted_by_default": default,
            },
        )
    purposes = {p.code: p for p in purpose_model.objects.all()}
    for category, code in DEFAULT_CATEGORY_MAPPING.items():
        if code in purposes:
            mapping_model.objects.get_or_create(
                category=category, defaults={"purpose": purposes[code]}
            )
