"""Default purposes and the default consent-category mapping. Safe to rerun: existing rows are
left as operators edited them."""

from django.db import migrations

PURPOSES = [
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


def install(apps, schema_editor):
    from consent.context_signals import DEFAULT_CATEGORY_MAPPING

    Purpose = apps.get_model("consent", "Purpose")
    Mapping = apps.get_model("consent", "ConsentCategoryMapping")
    for code, name, description, basis, default in PURPOSES:
        Purpose.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "description": description,
                "legal_basis": basis,
                "granted_by_default": default,
            },
        )
    purposes = {p.code: p for p in Purpose.objects.all()}
    for category, code in DEFAULT_CATEGORY_MAPPING.items():
        if code in purposes:
            Mapping.objects.get_or_create(category=category, defaults={"purpose": purposes[code]})


class Migration(migrations.Migration):
    dependencies = [("consent", "0001_initial")]

    operations = [migrations.RunPython(install, migrations.RunPython.noop)]
