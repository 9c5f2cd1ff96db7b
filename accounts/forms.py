from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.utils.translation import gettext_lazy as _


class SignUpForm(BaseUserCreationForm):
    first_name = forms.CharField(label=_("Your name"), max_length=150)

    class Meta:
        model = get_user_model()
        fields = ("email", "first_name")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email address already exists. Log in instead."))
        return email


class LoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Email or phone")
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "inputmode": "email"})
