"""Forms of the identity pages: review-queue filters, decisions, and the settings."""

from __future__ import annotations

from typing import Any

from django import forms

from identity.matching import DEFAULT_FIELDS, KINDS
from identity.models import MatchSettings
from identity.schemas import settings_validate


class QueueFilterForm(forms.Form):
    min_probability = forms.FloatField(required=False, min_value=0, max_value=1)
    max_probability = forms.FloatField(required=False, min_value=0, max_value=1)
    reason = forms.ChoiceField(
        required=False,
        choices=[("", "Any reason"), ("fuzzy", "Similar traits"), ("limit", "Limit")],
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        low, high = data.get("min_probability"), data.get("max_probability")
        if low is not None and high is not None and low > high:
            self.add_error("max_probability", "must not be below the minimum")
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(choices=[("merge", "Merge"), ("reject", "Not the same person")])
    ids = forms.CharField(required=False)  # bulk: comma-separated ids (checkboxes send many)

    def __init__(self, *args: Any, ids: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._ids = ids or []

    def clean_ids(self) -> list[int]:
        raw = [*self._ids, *(self.cleaned_data.get("ids") or "").split(",")]
        values = [v.strip() for v in raw if v.strip()]
        if not values:
            raise forms.ValidationError("choose at least one suggestion")
        if not all(v.isdigit() for v in values):
            raise forms.ValidationError("suggestion ids are numbers")
        if len(values) > 500:
            raise forms.ValidationError("at most 500 suggestions at once")
        return sorted({int(v) for v in values})


class SettingsForm(forms.Form):
    merge_threshold = forms.FloatField(
        min_value=0.01, max_value=1, help_text="Pairs at or above this probability merge."
    )
    review_threshold = forms.FloatField(
        min_value=0.01, max_value=1, help_text="Pairs between the two thresholds are queued."
    )
    trait_strategy = forms.ChoiceField(choices=MatchSettings.TraitStrategy.choices)
    survivor_rule = forms.ChoiceField(choices=MatchSettings.SurvivorRule.choices)
    kind_priority = forms.CharField(
        required=False,
        help_text="Identifier kinds, most trusted first, comma separated. An event goes to the "
        "profile of its highest-priority identifier; kinds not listed come last.",
    )
    kind_limits = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One per line: kind = most identities of that kind per profile.",
    )
    blocked_values = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text='One per line; "re:<regular expression>" for a pattern.',
    )
    fields = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 6}),
        help_text=f"One per line: trait path = kind ({', '.join(KINDS)}). Changing them refits "
        "the model at the next full rescan.",
    )

    @classmethod
    def initial_from(cls, settings: MatchSettings) -> dict[str, Any]:
        return {
            "merge_threshold": settings.merge_threshold,
            "review_threshold": settings.review_threshold,
            "trait_strategy": settings.trait_strategy,
            "survivor_rule": settings.survivor_rule,
            "kind_priority": ", ".join(settings.kind_priority or []),
            "kind_limits": "\n".join(f"{k} = {v}" for k, v in (settings.kind_limits or {}).items()),
            "blocked_values": "\n".join(settings.blocked_values or []),
            "fields": "\n".join(
                f"{f['path']} = {f['kind']}"
                for f in settings.fields
                or [{"path": f.path, "kind": f.kind} for f in DEFAULT_FIELDS]
            ),
        }

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        try:
            settings_validate(dict(data))
        except ValueError as error:
            for where, message in error.args[0].items():
                field = where.split(".")[0]
                self.add_error(field if field in self.fields else None, f"{where}: {message}")
        return data

    def clean_kind_priority(self) -> list[str]:
        return [v.strip() for v in self.cleaned_data["kind_priority"].split(",") if v.strip()]

    def _pairs(self, name: str) -> list[tuple[int, str, str]]:
        out = []
        for number, line in enumerate(self.cleaned_data[name].splitlines(), start=1):
            if not line.strip():
                continue
            key, sep, value = line.partition("=")
            if not sep or not key.strip() or not value.strip():
                raise forms.ValidationError(f'line {number}: write "name = value"')
            out.append((number, key.strip(), value.strip()))
        return out

    def clean_kind_limits(self) -> dict[str, Any]:
        limits: dict[str, Any] = {}
        for number, kind, value in self._pairs("kind_limits"):
            if not value.isdigit():
                raise forms.ValidationError(f"line {number}: the limit must be a whole number")
            limits[kind] = int(value)
        return limits

    def clean_blocked_values(self) -> list[str]:
        return [v.strip() for v in self.cleaned_data["blocked_values"].splitlines() if v.strip()]

    def clean_fields(self) -> list[dict[str, str]]:
        return [{"path": p, "kind": k} for _, p, k in self._pairs("fields")]
