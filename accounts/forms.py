from django import forms
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm, BaseUserCreationForm
from django.utils.translation import gettext_lazy as _

from core.phones import PhoneNumberField


class SignUpForm(BaseUserCreationForm):
    first_name = forms.CharField(label=_("Your name"), max_length=150)
    # Optional; a login like the email. Stored in E.164 form (core.phones), so any spelling logs in later.
    phone = PhoneNumberField(
        label=_("Phone number (optional)"),
        required=False,
        help_text=_("You can log in with it instead of your email."),
    )

    class Meta:
        model = get_user_model()
        fields = ("email", "first_name", "phone")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["email"].required = True  # this form signs up by email; phone and WeChat have their own

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if get_user_model().objects.filter(email__iexact=email).exists():
            raise forms.ValidationError(_("An account with this email address already exists. Log in instead."))
        return email

    def clean_phone(self) -> str | None:
        phone = self.cleaned_data.get("phone") or None  # E.164 (PhoneNumberField), or None
        if phone and get_user_model().objects.filter(phone=phone).exists():
            raise forms.ValidationError(_("Another account already uses this phone number."), code="unique")
        return phone


class LoginForm(AuthenticationForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["username"].label = _("Email or phone")
        self.fields["username"].widget.attrs.update({"autocomplete": "username", "inputmode": "email"})


class ProfileForm(forms.ModelForm):
    """A signed-in person's own name, email and phone.

    Email and phone are logins (see `EmailOrPhoneBackend`), so changing either asks for the current password:
    a borrowed, still-signed-in phone must not be enough to take the account over.
    """

    current_password = forms.CharField(
        label=_("Current password"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
        help_text=_("Needed only when you change your email address or phone number."),
    )

    class Meta:
        model = get_user_model()
        fields = ("first_name", "email", "phone")
        labels = {
            "first_name": _("Your name"),
            "email": _("Email address"),
            "phone": _("Phone number (optional)"),
        }
        help_texts = {
            "email": _("You log in with it, and password reset links are sent to it."),
            "phone": _("You can log in with it instead of your email."),
        }
        field_classes = {"phone": PhoneNumberField}
        widgets = {
            "first_name": forms.TextInput(attrs={"autocomplete": "name"}),
            "email": forms.EmailInput(attrs={"autocomplete": "email", "inputmode": "email"}),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["first_name"].required = True
        # Someone who signed up by phone or WeChat may have no email yet; one on file may be changed, not cleared.
        self.fields["email"].required = bool(self.instance.email)
        # Remember what is on file now: the instance itself is overwritten during validation.
        self.saved_email = self.instance.email
        self.saved_phone = self.instance.phone

    def _others(self):
        return get_user_model().objects.exclude(pk=self.instance.pk)

    def clean_first_name(self) -> str:
        first_name = self.cleaned_data["first_name"].strip()
        if not first_name:
            raise forms.ValidationError(_("Enter your name."), code="required")
        return first_name

    def clean_email(self) -> str | None:
        email = get_user_model().objects.normalize_email((self.cleaned_data.get("email") or "").strip()).lower()
        if not email:
            return None
        if self._others().filter(email__iexact=email).exists():
            raise forms.ValidationError(_("Another account already uses this email address."), code="unique")
        return email

    def clean_phone(self) -> str | None:
        phone = self.cleaned_data.get("phone") or None  # E.164 (PhoneNumberField), or None
        if phone and self._others().filter(phone=phone).exists():
            raise forms.ValidationError(_("Another account already uses this phone number."), code="unique")
        return phone

    def clean(self) -> dict:
        cleaned_data = super().clean()
        email_changed = "email" in cleaned_data and cleaned_data["email"] != self.saved_email
        phone_changed = "phone" in cleaned_data and cleaned_data["phone"] != self.saved_phone
        if email_changed or phone_changed:
            password = cleaned_data.get("current_password") or ""
            if not password:
                self.add_error(
                    "current_password", _("Enter your current password to change your email address or phone number.")
                )
            elif not self.instance.check_password(password):
                self.add_error("current_password", _("Your current password is not correct."))
        return cleaned_data


class PhoneForm(forms.Form):
    """The phone a code is sent to (any usual spelling; cleaned to E.164)."""

    phone = PhoneNumberField(label=_("Phone number"))


class PhoneSignUpForm(PhoneForm):
    """Signing up by phone: the name, and the phone the code goes to (2 typed fields, then the code)."""

    first_name = forms.CharField(
        label=_("Your name"), max_length=150, widget=forms.TextInput(attrs={"autocomplete": "name"})
    )

    field_order = ("first_name", "phone")

    def clean_first_name(self) -> str:
        first_name = self.cleaned_data["first_name"].strip()
        if not first_name:
            raise forms.ValidationError(_("Enter your name."), code="required")
        return first_name


class CodeForm(forms.Form):
    code = forms.CharField(
        label=_("Code from the SMS"),
        min_length=6,
        max_length=6,
        widget=forms.TextInput(
            attrs={"inputmode": "numeric", "autocomplete": "one-time-code", "pattern": "[0-9]{6}", "maxlength": "6"}
        ),
        error_messages={
            "min_length": _("The code has 6 digits."),
            "max_length": _("The code has 6 digits."),
        },
    )

    def clean_code(self) -> str:
        code = self.cleaned_data["code"].strip()
        if not code.isdigit():
            raise forms.ValidationError(_("The code has 6 digits."), code="invalid")
        return code


class ApprovalReasonForm(forms.Form):
    """Why a change that needs a second person is asked for (four eyes): the approver and the audit log read it."""

    reason = forms.CharField(label=_("Reason"), max_length=2000, widget=forms.Textarea(attrs={"rows": 3, "cols": 60}))


class ApprovalDecisionForm(forms.Form):
    """A second person's decision; a refusal needs a note (the requester reads it)."""

    note = forms.CharField(
        label=_("Note"), max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 60})
    )
