"""Forms of the Data pages (sources, tracking plans, quarantine, currencies)."""

import json
from decimal import Decimal
from typing import Any

from django import forms
from django.conf import settings

from access.models import Source
from access.parsers import storable_json_loads
from profiles.models import DataImport, TrackingPlan

PLAN_EXAMPLE = json.dumps(
    {
        "Order Completed": {
            "type": "object",
            "required": ["order_id", "revenue"],
            "properties": {"order_id": {"type": "string"}, "revenue": {"type": "number"}},
        }
    },
    indent=2,
)


class SourceCreateForm(forms.Form):
    name = forms.CharField(
        max_length=200, help_text="What sends the events, e.g. “Website” or “iOS app”."
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if Source.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError(f"There is already a source named “{name}”.")
        return name


class TrackingPlanForm(forms.Form):
    mode = forms.ChoiceField(choices=TrackingPlan.Mode.choices)
    event_schemas = forms.CharField(
        label="Event schemas",
        required=False,
        widget=forms.Textarea(attrs={"rows": 18, "spellcheck": "false", "class": "code"}),
        help_text="A JSON object: event name → JSON Schema of its properties. "
        "Empty means no events are planned.",
    )

    def clean_event_schemas(self) -> dict[str, Any]:
        raw = self.cleaned_data["event_schemas"].strip()
        if not raw:
            return {}
        try:
            value = json.loads(raw)
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
            ) from None
        if not isinstance(value, dict):
            raise forms.ValidationError(
                "The plan must be a JSON object mapping event names to JSON Schemas."
            )
        # Each schema is checked by tracking_plan_save, whose error the view shows here.
        return value


class QuarantineFilterForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=Source.objects.order_by("name"), required=False, empty_label="All sources"
    )
    event = forms.CharField(max_length=255, required=False, label="Event")


class QuarantinedMessageForm(forms.Form):
    message = forms.CharField(
        label="Message",
        widget=forms.Textarea(attrs={"rows": 22, "spellcheck": "false", "class": "code"}),
        help_text="The message as JSON. Fix it, then replay: it goes through ingestion again.",
    )

    def clean_message(self) -> dict[str, Any]:
        try:
            value = storable_json_loads(self.cleaned_data["message"])
        except json.JSONDecodeError as error:
            raise forms.ValidationError(
                f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
            ) from None
        except ValueError as error:
            raise forms.ValidationError(str(error)) from None
        if not isinstance(value, dict):
            raise forms.ValidationError("A message is a JSON object.")
        return value


class DataImportForm(forms.Form):
    source = forms.ModelChoiceField(
        queryset=Source.objects.order_by("name"),
        help_text="The rows are stored as this source's events.",
    )
    kind = forms.ChoiceField(label="What the file holds", choices=DataImport.Kind.choices)
    file = forms.FileField(
        help_text="A .csv file with a header row, or a .jsonl file (one JSON object a line)."
    )


class CurrencyRateForm(forms.Form):
    currency = forms.RegexField(
        regex=r"^[A-Za-z]{3}$",
        max_length=3,
        error_messages={"invalid": "A three-letter ISO 4217 code, e.g. EUR."},
        help_text="ISO 4217 code of the orders' currency, e.g. EUR.",
    )
    rate = forms.DecimalField(
        max_digits=18,
        decimal_places=8,
        min_value=Decimal("0.00000001"),
        help_text="How much one unit of that currency is worth in the workspace currency.",
    )

    def clean_currency(self) -> str:
        code = self.cleaned_data["currency"].upper()
        if code == settings.WORKSPACE_CURRENCY:
            raise forms.ValidationError(f"{code} is the workspace currency: its rate is 1.")
        return code
