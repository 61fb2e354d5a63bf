"""The builder's form: the definition arrives as JSON text and is checked by the service."""

import json
from typing import Any

from django import forms

from access.outbound import MAX_URL_LENGTH, outbound_url_validator
from segments import conditions, services


class SegmentForm(forms.Form):
    name = forms.CharField(max_length=200)
    description = forms.CharField(
        required=False, max_length=5000, widget=forms.Textarea(attrs={"rows": 2})
    )
    definition = forms.CharField(widget=forms.HiddenInput(attrs={"id": "definition-input"}))
    webhook_url = forms.URLField(
        required=False,
        label="Webhook URL (optional)",
        assume_scheme="https",
        max_length=MAX_URL_LENGTH,
        validators=[outbound_url_validator],
    )

    def __init__(self, *args: Any, segment: Any = None, **kwargs: Any) -> None:
        self.segment = segment
        super().__init__(*args, **kwargs)

    def clean_definition(self) -> dict:
        return parse_definition(self.cleaned_data["definition"], segment=self.segment)


class DefinitionErrors(forms.ValidationError):
    def __init__(self, errors: list[conditions.ConditionError]) -> None:
        self.pointers = errors
        super().__init__([f"{e.pointer or '/'}: {e.message}" for e in errors])


def parse_definition(raw: str, *, segment: Any = None) -> dict:
    try:
        definition = json.loads(raw)
    except (TypeError, ValueError):
        raise DefinitionErrors(
            [conditions.ConditionError("", "the definition is not valid JSON")]
        ) from None
    try:
        services.segment_definition_check(definition=definition, segment=segment)
    except conditions.InvalidDefinition as error:
        raise DefinitionErrors(error.errors) from None
    return definition
