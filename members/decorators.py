"""The member pages' guards: signed in and a member (`member_required`), and a suspended member refused."""

import functools
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseForbidden
from django.shortcuts import redirect
from django.template.loader import render_to_string
from django.utils.translation import gettext as _

from referrals.selectors import member_for_user

READ_METHODS = ("GET", "HEAD", "OPTIONS")


def member_suspended_response(request):
    """403: the membership is suspended. Says so plainly and points to what stays open (earnings, withdrawals)."""
    return HttpResponseForbidden(render_to_string("members/suspended.html", request=request))


def member_required(view=None, *, suspended_may_read: bool = False):
    """Signed in and an active member: the view finds the member on `request.member`.

    Signed out: the login page. Signed in without a membership: the join page, with a message. A suspended member:
    a 403 page saying so; with `suspended_may_read`, a suspended member may still GET the page (their earnings,
    statement and withdrawals, read-only), but never POST to it.
    """
    if view is None:
        return functools.partial(member_required, suspended_may_read=suspended_may_read)

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        member = member_for_user(request.user)
        if member is None:
            messages.info(request, _("Join the programme first: it is free, and gives you a shop and links."))
            return redirect("members:join")
        if not member.is_active and not (suspended_may_read and request.method in READ_METHODS):
            return member_suspended_response(request)
        request.member = member
        return view(request, *args, **kwargs)

    return login_required(wrapper)


def suspended_refused(view):
    """For member pages that find the member themselves (the dashboard, QR codes, deactivating a link): a suspended
    member gets the 403 page; everyone else goes on to the view, which does its own sign-in and membership checks."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        member = member_for_user(request.user)
        if member is not None and not member.is_active:
            return member_suspended_response(request)
        return view(request, *args, **kwargs)

    return wrapper
