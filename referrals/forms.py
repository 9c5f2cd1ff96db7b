from django import forms
from django.utils.translation import gettext_lazy as _

from referrals.models import Member
from referrals.selectors import member_by_invite_code


class MemberAddForm(forms.ModelForm):
    """Staff adding a member: the user and the sponsor. The service does the insert."""

    class Meta:
        model = Member
        fields = ("user", "parent")

    def clean_user(self):
        user = self.cleaned_data["user"]
        if Member.objects.filter(user=user).exists():
            raise forms.ValidationError(_("This user is already a member."))
        return user

    def clean_parent(self):
        parent = self.cleaned_data.get("parent")
        if parent is not None and not parent.is_active:
            raise forms.ValidationError(_("The sponsor is suspended; pick an active member."))
        return parent


class MemberMoveForm(forms.Form):
    new_sponsor_code = forms.CharField(
        label=_("New sponsor's invite code"),
        required=False,
        help_text=_("Leave empty to make the member a root (no sponsor)."),
    )
    reason = forms.CharField(label=_("Reason"), widget=forms.Textarea(attrs={"rows": 3}))

    def clean_new_sponsor_code(self) -> Member | None:
        code = self.cleaned_data["new_sponsor_code"].strip()
        if not code:
            return None
        sponsor = member_by_invite_code(code)
        if sponsor is None:
            raise forms.ValidationError(_("No member has the invite code “%(code)s”."), params={"code": code})
        return sponsor
