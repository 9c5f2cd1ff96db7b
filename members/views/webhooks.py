"""The member's outbound webhooks (/dashboard/webhooks/): their endpoints, the deliveries to each with every attempt,
and replay. An endpoint receives only events about the member's own orders, commission entries and payouts
(webhooks.events). Another member's endpoint or delivery is a 404, exactly like one that does not exist.

A signing secret is shown once: the request that created or rotated it keeps it in the session, and the endpoint's
page takes it out (shows it, forgets it)."""

import json

from django.conf import settings
from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from core.forms import add_service_errors
from members.decorators import member_required
from members.webhooks.forms import EndpointForm
from members.webhooks.selectors import endpoint_deliveries, member_delivery, member_endpoint, member_endpoints
from members.webhooks.services import (
    WebhookError,
    delivery_payload,
    delivery_replay,
    endpoint_create,
    endpoint_delete,
    endpoint_rotate_secret,
    endpoint_set_active,
    endpoint_update,
)

SECRET_SESSION_KEY = "webhook_secret_once"  # noqa: S105 - a session key's name


def _remember_secret(request, endpoint) -> None:
    request.session[SECRET_SESSION_KEY] = {"endpoint": endpoint.pk, "secret": endpoint.secret}


def _secret_once(request, endpoint) -> str | None:
    shown = request.session.get(SECRET_SESSION_KEY)
    if shown and shown.get("endpoint") == endpoint.pk:
        del request.session[SECRET_SESSION_KEY]
        return shown.get("secret")
    return None


def _endpoint_or_404(member, endpoint_id: int):
    endpoint = member_endpoint(member, endpoint_id)
    if endpoint is None:
        raise Http404(_("No such endpoint."))
    return endpoint


@member_required
@require_http_methods(["GET", "POST"])
def endpoints(request):
    member = request.member
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint = endpoint_create(owner=member, actor=request.user, **form.cleaned_data)
        except WebhookError as error:
            add_service_errors(form, error)
        else:
            _remember_secret(request, endpoint)
            messages.success(request, _("Endpoint added. Copy its signing secret now: it is shown only once."))
            return redirect("members:webhook_endpoint", endpoint_id=endpoint.pk)
    return render(
        request,
        "members/webhooks.html",
        {"form": form, "endpoints": member_endpoints(member)},
        status=400 if form.errors else 200,
    )


@member_required
@require_http_methods(["GET", "POST"])
def endpoint_detail(request, endpoint_id: int):
    endpoint = _endpoint_or_404(request.member, endpoint_id)
    initial = {"url": endpoint.url, "description": endpoint.description, "event_types": endpoint.event_types}
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint_update(endpoint=endpoint, **form.cleaned_data)
        except WebhookError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Endpoint saved."))
            return redirect("members:webhook_endpoint", endpoint_id=endpoint.pk)
    if form.errors:
        endpoint.refresh_from_db()
    return render(
        request,
        "members/webhook_endpoint.html",
        {
            "endpoint": endpoint,
            "form": form,
            "secret": _secret_once(request, endpoint),
            "deliveries": endpoint_deliveries(endpoint),
        },
        status=400 if form.errors else 200,
    )


@member_required
@require_POST
def endpoint_rotate(request, endpoint_id: int):
    endpoint = endpoint_rotate_secret(endpoint=_endpoint_or_404(request.member, endpoint_id))
    _remember_secret(request, endpoint)
    messages.success(
        request,
        _("New signing secret made. The old one keeps signing beside it for %(hours)d hours.")
        % {"hours": settings.WEBHOOKS_SECRET_ROTATION_HOURS},
    )
    return redirect("members:webhook_endpoint", endpoint_id=endpoint.pk)


@member_required
@require_POST
def endpoint_toggle(request, endpoint_id: int):
    endpoint = _endpoint_or_404(request.member, endpoint_id)
    switch_on = not endpoint.is_active
    endpoint_set_active(endpoint=endpoint, is_active=switch_on, reason=_("Switched off by you."))
    messages.success(request, _("Endpoint switched on.") if switch_on else _("Endpoint switched off."))
    return redirect("members:webhook_endpoint", endpoint_id=endpoint.pk)


@member_required
@require_POST
def endpoint_remove(request, endpoint_id: int):
    endpoint = _endpoint_or_404(request.member, endpoint_id)
    endpoint_delete(endpoint=endpoint)
    messages.success(request, _("Endpoint deleted."))
    return redirect("members:webhooks")


@member_required
@require_http_methods(["GET"])
def delivery_detail(request, delivery_id: int):
    delivery = member_delivery(request.member, delivery_id)
    if delivery is None:
        raise Http404(_("No such delivery."))
    payload = json.dumps(delivery_payload(delivery), ensure_ascii=False, indent=2, sort_keys=True)
    return render(request, "members/webhook_delivery.html", {"delivery": delivery, "payload": payload})


@member_required
@require_POST
def delivery_replay_view(request, delivery_id: int):
    delivery = member_delivery(request.member, delivery_id)
    if delivery is None:
        raise Http404(_("No such delivery."))
    try:
        delivery_replay(delivery=delivery)
    except WebhookError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("Sent again as a new attempt."))
    return redirect("members:webhook_delivery", delivery_id=delivery.pk)
