"""Forms of the recommendations pages: the catalog search, a catalog upload, a training
request. Each says what is wrong beside the field."""

from __future__ import annotations

from typing import Any

from django import forms

from recommendations.catalog import AVAILABILITY
from recommendations.recommenders import KINDS
from recommendations.services import ImportFileError, import_format

MAX_UPLOAD_BYTES = 200 * 1024 * 1024


class CatalogSearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=200, strip=True)
    category = forms.CharField(required=False, max_length=500, strip=True)
    availability = forms.ChoiceField(
        required=False, choices=[("", "Any availability"), *[(a, a) for a in AVAILABILITY]]
    )


class ItemImportForm(forms.Form):
    file = forms.FileField(
        help_text="A .csv file with a header row, or a .jsonl file with one item per line."
    )

    def clean_file(self) -> Any:
        upload = self.cleaned_data["file"]
        try:
            import_format(upload.name)
        except ImportFileError as error:
            raise forms.ValidationError(str(error)) from None
        if upload.size > MAX_UPLOAD_BYTES:
            raise forms.ValidationError("The file is larger than 200 MB: split it in parts.")
        return upload


class ModelTrainForm(forms.Form):
    kind = forms.ChoiceField(choices=[(kind, kind.replace("_", " ")) for kind in KINDS])
