import json
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from access.roles import ADMIN, COMPLIANCE
from consent.hashing import SUBJECT_KINDS, InvalidIdentifierError, identifier_normalize
from consent.models import Purpose, Regulation, RegulationType, RetentionPolicy


class PrivacyRequestForm(forms.Form):
    regulation_type = forms.ChoiceField(choices=RegulationType.choices)
    regulation = forms.ChoiceField(choices=Regulation.choices, initial=Regulation.GDPR)
    subject_kind = forms.ChoiceField(
        choices=[(k, k.replace("_", " ")) for k in SUBJECT_KINDS], label="Identified by"
    )
    subject_value = forms.CharField(max_length=320, label="Identifier")
    rectify_traits = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        label="New trait values (RECTIFY only, JSON object)",
    )

    def clean(self):
        data = super().clean()
        kind, value = data.get("subject_kind"), data.get("subject_value")
        if kind and value:
            try:
                identifier_normalize(kind, value)
            except InvalidIdentifierError as exc:
                self.add_error("subject_value", str(exc))
        raw = (data.get("rectify_traits") or "").strip()
        if data.get("regulation_type") == RegulationType.RECTIFY:
            try:
                traits = json.loads(raw or "null")
            except json.JSONDecodeError as exc:
                self.add_error("rectify_traits", f"not valid JSON: {exc.msg} at line {exc.lineno}")
                return data
            if not isinstance(traits, dict) or not traits:
                self.add_error("rectify_traits", 'give a JSON object, e.g. {"last_name": "Doe"}')
            else:
                data["changes"] = {"traits": traits}
        elif raw:
            self.add_error("rectify_traits", "only RECTIFY requests take new trait values")
        return data


class VerifyForm(forms.Form):
    note = forms.CharField(
        max_length=500, label="How was the identity verified?", widget=forms.TextInput()
    )


class CommentForm(forms.Form):
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="Comment")


def _privacy_staff():
    return (
        get_user_model()
        .objects.filter(
            Q(groups__name__in=[COMPLIANCE, ADMIN]) | Q(is_superuser=True), is_active=True
        )
        .distinct()
        .order_by("username")
    )


class AssignForm(forms.Form):
    assignee = forms.ModelChoiceField(queryset=_privacy_staff(), required=False, label="Assign to")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["assignee"].queryset = _privacy_staff()


class ConsentChangeForm(forms.Form):
    purpose = forms.ModelChoiceField(queryset=Purpose.objects.all(), to_field_name="code")
    granted = forms.TypedChoiceField(
        choices=[("true", "Granted"), ("false", "Withdrawn")],
        coerce=lambda v: v == "true",
    )
    policy_version = forms.CharField(max_length=64, required=False)


class AuditFilterForm(forms.Form):
    actor = forms.CharField(required=False)
    action = forms.ChoiceField(required=False, choices=[("", "Any action")])
    resource = forms.CharField(required=False)
    profile_id = forms.IntegerField(required=False, min_value=1, label="Profile id")
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    include_system = forms.BooleanField(
        required=False, label="Show automated rows (consent signals, purges)"
    )

    def __init__(self, *args: Any, actions: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = [("", "Any action")] + [(a, a) for a in actions]


class PurposeForm(forms.ModelForm):
    class Meta:
        model = Purpose
        fields = ["code", "name", "description", "legal_basis", "granted_by_default"]
        widgets = {"description": forms.Textarea(attrs={"rows": 3})}
        help_texts = {
            "code": "What events, consent signals and the API call it (e.g. “marketing”).",
            "granted_by_default": "Answers for people who never said yes or no.",
        }


class RetentionPolicyForm(forms.ModelForm):
    class Meta:
        model = RetentionPolicy
        fields = ["event_name", "days", "enabled"]
        help_texts = {
            "event_name": "An event name, or * for every event without a policy of its own.",
            "days": "Events older than this are purged (at least 1).",
        }

    def clean_days(self) -> int:
        days = self.cleaned_data["days"]
        if days < 1:
            raise forms.ValidationError("At least 1 day.")
        return int(days)
