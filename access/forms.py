"""Forms of the access management pages (API keys, staff users and their roles)."""

from django import forms
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password

from access.auth import SCOPES
from access.roles import ROLES

ROLE_HELP = {
    "marketer": "profiles, segments, recommendations, campaigns, data pages",
    "compliance": "consent, privacy requests, audit",
    "admin": "everything, including sources, keys and users",
}


class ApiKeyCreateForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Which system uses it, e.g. “CRM sync”.")
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in SCOPES],
        widget=forms.CheckboxSelectMultiple,
        error_messages={"required": "Pick at least one scope."},
    )


def _role_field() -> forms.MultipleChoiceField:
    return forms.MultipleChoiceField(
        choices=[(role, f"{role} ({ROLE_HELP[role]})") for role in ROLES],
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )


class StaffUserCreateForm(forms.Form):
    email = forms.EmailField(max_length=150)
    password = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        strip=False,
    )
    roles = _role_field()

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        taken = User.objects.filter(email__iexact=email) | User.objects.filter(
            username__iexact=email
        )
        if taken.exists():
            raise forms.ValidationError("A user with this email already exists.")
        return email

    def clean(self) -> dict:
        cleaned = super().clean()
        password = cleaned.get("password")
        if password:
            candidate = User(username=cleaned.get("email", ""), email=cleaned.get("email", ""))
            try:
                validate_password(password, user=candidate)
            except forms.ValidationError as error:
                self.add_error("password", error)
        return cleaned


class StaffRolesForm(forms.Form):
    roles = _role_field()
