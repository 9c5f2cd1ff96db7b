from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import redirect
from django.utils.translation import gettext as _

from referrals.selectors import member_for_user


def member_required(view):
    """Signed in and a member: the view finds the member on `request.member`.

    Signed out: the login page. Signed in without a membership: the join page, with a message.
    """

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        member = member_for_user(request.user)
        if member is None:
            messages.info(request, _("Join the programme first: it is free, and gives you a shop and links."))
            return redirect("referrals:join")
        request.member = member
        return view(request, *args, **kwargs)

    return login_required(wrapper)
