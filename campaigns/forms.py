"""The campaign editor's form: name, kind and the definition as JSON (validated by the same
service the API uses, so a page and an API client get the same errors)."""

from __future__ import annotations

import json
from typing import Any

from django import forms

from campaigns.models import Campaign


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200)
    kind = forms.ChoiceField(choices=Campaign.Kind.choices)
    definition = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 24, "spellcheck": "false", "class": "code"})
    )

    def clean_definition(self) -> dict[str, Any]:
        try:
            value = json.loads(self.cleaned_data["definition"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(f"Not valid JSON: {error}") from None
        if not isinstance(value, dict):
            raise forms.ValidationError("The definition is a JSON object.")
        return value
