from django import forms


class ProfileSearchForm(forms.Form):
    """The profile explorer's search box and keyset pager."""

    q = forms.CharField(required=False, max_length=200, strip=True, label="Search")
    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("after") is not None and cleaned.get("before") is not None:
            raise forms.ValidationError("Give either after or before, not both.")
        return cleaned
