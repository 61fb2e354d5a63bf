from django import forms

from access.models import Source
from profiles.selectors import ExplorerFilters


class ProfileSearchForm(forms.Form):
    """The profile explorer's search box and keyset pager."""

    q = forms.CharField(required=False, max_length=200, strip=True, label="Search")
    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    page = forms.IntegerField(required=False, min_value=1, max_value=100_000)
    sort = forms.ChoiceField(
        required=False,
        choices=[
            ("newest", "Newest first"),
            ("last_seen", "Last seen"),
            ("revenue", "Revenue"),
            ("orders", "Orders"),
            ("events", "Events"),
        ],
    )
    seen = forms.TypedChoiceField(
        required=False,
        coerce=int,
        empty_value=None,
        label="Last seen",
        choices=[
            ("", "Any time"),
            ("1", "Last 24 hours"),
            ("7", "Last 7 days"),
            ("30", "Last 30 days"),
            ("90", "Last 90 days"),
        ],
    )
    source = forms.ModelChoiceField(
        required=False, queryset=Source.objects.order_by("name"), empty_label="Any source"
    )
    segment = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    has_email = forms.BooleanField(required=False, label="Has an email")
    include_empty = forms.BooleanField(required=False, label="Include profiles without events")

    def filters(self) -> ExplorerFilters:
        data = self.cleaned_data
        return ExplorerFilters(
            segment_id=data.get("segment"),
            has_email=bool(data.get("has_email")),
            source_id=data["source"].pk if data.get("source") else None,
            seen_days=data.get("seen"),
            include_empty=bool(data.get("include_empty")),
        )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("after") is not None and cleaned.get("before") is not None:
            raise forms.ValidationError("Give either after or before, not both.")
        return cleaned
