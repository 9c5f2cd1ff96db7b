"""Staff's screens for outbound webhooks: endpoints (a staff endpoint has no member and receives every event), the
deliveries with every attempt, and the events. Endpoints are created and changed through webhooks.services (the URL
rule, the secret); deliveries and events are read-only, and the replay action calls the service."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.admin_tools import ReadOnlyAdmin, ReadOnlyInline, for_each_row
from members.webhooks.addresses import endpoint_url_check
from members.webhooks.models import Delivery, DeliveryAttempt, Endpoint, Event, EventType
from members.webhooks.services import (
    WebhookError,
    delivery_replay,
    endpoint_create,
    endpoint_rotate_secret,
    endpoint_set_active,
    endpoint_update,
)


class EndpointAdminForm(forms.ModelForm):
    url = forms.CharField(label=_("URL"), max_length=500, widget=forms.URLInput)
    event_types = forms.MultipleChoiceField(
        label=_("Events"), choices=EventType.choices, widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = Endpoint
        fields = ["owner", "url", "description", "event_types"]

    def clean_url(self):
        return endpoint_url_check(self.cleaned_data["url"])

    def clean(self):
        data = super().clean()
        owner = data.get("owner")
        is_new_for_member = owner is not None and self.instance.pk is None
        if is_new_for_member and Endpoint.objects.filter(owner=owner).count() >= settings.WEBHOOKS_MAX_ENDPOINTS:
            raise ValidationError(
                _("This member has %(count)d endpoints already, the most allowed."),
                params={"count": settings.WEBHOOKS_MAX_ENDPOINTS},
            )
        return data


@admin.register(Endpoint)
class EndpointAdmin(admin.ModelAdmin):
    form = EndpointAdminForm
    list_display = ("url", "owner", "is_active", "events", "failing_since", "created_at")
    list_filter = ("is_active",)
    search_fields = ("url", "description", "owner__user__email")
    raw_id_fields = ("owner",)
    readonly_fields = ("secret_hint", "is_active", "disabled_at", "disabled_reason", "failing_since", "created_at")
    actions = ("rotate_secret", "switch_off", "switch_on")

    @admin.display(description=_("events"))
    def events(self, endpoint: Endpoint) -> str:
        return ", ".join(endpoint.event_types)

    @admin.display(description=_("signing secret"))
    def secret_hint(self, endpoint: Endpoint) -> str:
        return endpoint.secret_hint

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        fields = {"url": data["url"], "event_types": data["event_types"], "description": data.get("description", "")}
        try:
            if change:
                endpoint_update(endpoint=obj, **fields)
                return
            endpoint = endpoint_create(owner=data.get("owner"), actor=request.user, **fields)
        except WebhookError as error:  # the form checked the same rules; a member over the limit lands here
            raise ValidationError(error.messages) from error
        obj.pk, obj.secret, obj.created_at = endpoint.pk, endpoint.secret, endpoint.created_at
        self.message_user(
            request,
            _("Signing secret of %(url)s (shown only once; copy it now): %(secret)s")
            % {"url": endpoint.url, "secret": endpoint.secret},
            messages.WARNING,
        )

    @admin.action(description=_("Make a new signing secret"), permissions=["change"])
    def rotate_secret(self, request, queryset):
        for endpoint in queryset:
            endpoint_rotate_secret(endpoint=endpoint)
            self.message_user(
                request,
                _("New signing secret of %(url)s (shown only once; the old one still signs for a while): %(secret)s")
                % {"url": endpoint.url, "secret": endpoint.secret},
                messages.WARNING,
            )

    @admin.action(description=_("Switch off"), permissions=["change"])
    def switch_off(self, request, queryset):
        for endpoint in queryset:
            endpoint_set_active(endpoint=endpoint, is_active=False, reason=str(_("Switched off by staff.")))
        self.message_user(request, _("Switched off."), messages.SUCCESS)

    @admin.action(description=_("Switch on"), permissions=["change"])
    def switch_on(self, request, queryset):
        for endpoint in queryset:
            endpoint_set_active(endpoint=endpoint, is_active=True)
        self.message_user(request, _("Switched on."), messages.SUCCESS)


class AttemptInline(ReadOnlyInline):
    model = DeliveryAttempt
    fields = (
        "number",
        "trigger",
        "started_at",
        "duration_ms",
        "status_code",
        "is_success",
        "error",
        "response_excerpt",
    )
    parent_permissions = ("webhooks.view_delivery",)


@admin.register(Delivery)
class DeliveryAdmin(ReadOnlyAdmin):
    list_display = ("event", "endpoint", "status", "attempt_count", "last_status_code", "next_attempt_at", "created_at")
    list_filter = ("status", "event__type")
    search_fields = ("event__public_id", "endpoint__url")
    list_select_related = ("event", "endpoint")
    fields = (
        "event",
        "endpoint",
        "status",
        "attempt_count",
        "next_attempt_at",
        "last_status_code",
        "delivered_at",
        "created_at",
    )
    inlines = (AttemptInline,)
    actions = ("replay",)

    @admin.action(description=_("Replay (send again now as a new attempt)"), permissions=["change"])
    def replay(self, request, queryset):
        for_each_row(
            self,
            request,
            queryset.select_related("endpoint"),
            lambda delivery: delivery_replay(delivery=delivery),
            lambda count: (
                ngettext("%(count)d delivery sent again.", "%(count)d deliveries sent again.", count) % {"count": count}
            ),
            refusal=WebhookError,
        )


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "type", "created_at")
    list_filter = ("type",)
    search_fields = ("public_id", "key")
    fields = ("public_id", "type", "key", "data", "created_at")
