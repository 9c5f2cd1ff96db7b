"""allauth's social-account adapter (settings.SOCIALACCOUNT_ADAPTER): what happens when WeChat logs in someone
new, binds, unbinds or fails. On the members floor because a new account from WeChat joins at once, under the
sponsor whose invite page the person came from (members.views.join keeps the invite code in the session across
WeChat's round trip), as a sign-up on the join page does."""

from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.core.exceptions import ValidationError
from django.db import transaction
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _

from accounts.services import AccountError, user_can_unbind_wechat
from referrals.selectors import member_by_invite_code, member_for_user
from referrals.services import ReferralError, member_join

JOIN_INVITE_SESSION_KEY = "join_wechat_invite"  # the invite code of the join page that sent the person to WeChat


class WeChatSignUpAdapter(DefaultSocialAccountAdapter):
    def populate_user(self, request, sociallogin, data):
        user = super().populate_user(request, sociallogin, data)
        user.email = user.email or None  # WeChat gives no email: NULL, not "" (the column is unique)
        nickname = (sociallogin.account.extra_data.get("nickname") or "").strip()
        user.first_name = nickname[:150] or _("WeChat user")
        user.last_name = ""
        return user

    def save_user(self, request, sociallogin, form=None):
        """The new account, its WeChat binding and its membership, in one transaction: all or nothing."""
        invite_code = request.session.pop(JOIN_INVITE_SESSION_KEY, None)
        sponsor = member_by_invite_code(invite_code) if invite_code else None
        if sponsor is not None and not sponsor.is_active:
            sponsor = None
        try:
            with transaction.atomic():
                user = super().save_user(request, sociallogin, form)
                if member_for_user(user) is None:
                    member_join(user=user, sponsor=sponsor, source=None)
        except ReferralError as error:
            raise ImmediateHttpResponse(_error_page(request, " ".join(error.messages))) from None
        return user

    def validate_disconnect(self, account, accounts) -> None:
        try:
            user_can_unbind_wechat(user=account.user, account_id=account.pk)
        except AccountError as error:
            raise ValidationError(str(error)) from None

    def get_connect_redirect_url(self, request, socialaccount) -> str:
        return reverse("accounts:logins")

    def on_authentication_error(self, request, provider, error=None, exception=None, extra_context=None):
        # WeChat refused the code (used, expired, made up), the state was not this browser's, or WeChat could not
        # be reached: one page that says so and offers the other ways in. The details go to the log only.
        raise ImmediateHttpResponse(
            _error_page(request, _("Logging in with WeChat did not work. Please try again, or log in another way."))
        )


def _error_page(request, problem: str):
    return render(request, "accounts/wechat_error.html", {"problem": problem}, status=400)
