"""Page forms: JSON fields arrive as text; the services check everything else and their
errors (by field) become form errors."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from experiences.definition import InvalidExperience
from experiences.models import Experience, Placement


class JsonField(forms.CharField):
    def __init__(self, *, allow_null: bool = False, rows: int = 6, **kwargs: Any) -> None:
        self.allow_null = allow_null
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": rows, "class": "code"}))
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, str):
            return value
        return "" if value is None else json.dumps(value, indent=2, ensure_ascii=False)

    def to_python(self, value: Any) -> Any:
        text = super().to_python(value).strip()
        if not text:
            return None if self.allow_null else {}
        try:
            return json.loads(text)
        except ValueError as error:
            raise forms.ValidationError(f"not valid JSON: {error}") from None


def errors_apply(form: forms.Form, invalid: InvalidExperience) -> None:
    for field, problems in invalid.errors.items():
        form.add_error(field if field in form.fields else None, problems)


class PlacementForm(forms.Form):
    key = forms.SlugField(max_length=64, help_text="e.g. home_hero")
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    content_schema = JsonField(label="Content schema (JSON Schema)", rows=14)
    default_content = JsonField(label="Default content", rows=8)

    @classmethod
    def of(cls, placement: Placement) -> PlacementForm:
        return cls(initial={name: getattr(placement, name) for name in cls.base_fields})


class ExperienceForm(forms.Form):
    placement = forms.ModelChoiceField(queryset=Placement.objects.order_by("key"))
    name = forms.CharField(max_length=200)
    status = forms.ChoiceField(choices=Experience.Status.choices)
    priority = forms.IntegerField(
        initial=100, min_value=-1_000_000, max_value=1_000_000, help_text="Lower first."
    )
    allocation = forms.ChoiceField(choices=Experience.Allocation.choices)
    goal_event = forms.CharField(
        required=False, max_length=255, help_text="Counted as a conversion; clicks if empty."
    )
    holdout_percent = forms.FloatField(
        initial=0,
        min_value=0,
        max_value=99.99,
        label="Holdout (%)",
        help_text="Kept out: they see the default.",
    )
    starts_at = forms.DateTimeField(required=False, help_text="UTC, e.g. 2026-12-24 08:00")
    ends_at = forms.DateTimeField(required=False, help_text="UTC; empty: no end.")
    audience = JsonField(
        allow_null=True, rows=4, label="Audience", help_text="A segment condition; empty: everyone."
    )
    page = JsonField(rows=3, label="Page conditions", help_text="Empty: every page.")
    variants = JsonField(label="Variants", rows=14)

    def clean_page(self) -> Any:
        return self.cleaned_data["page"] or []

    def clean_variants(self) -> Any:
        return self.cleaned_data["variants"] or []

    @classmethod
    def of(cls, experience: Experience) -> ExperienceForm:
        return cls(initial={name: getattr(experience, name) for name in cls.base_fields})


class PreviewForm(forms.Form):
    profile = forms.IntegerField(min_value=1, label="Profile id")
    path = forms.CharField(required=False, max_length=2000)
    referrer = forms.CharField(required=False, max_length=2000)
    utm_campaign = forms.CharField(required=False, max_length=2000, label="UTM campaign")
    device = forms.CharField(required=False, max_length=2000)
    country = forms.CharField(required=False, max_length=2000)
