"""Staff screens for the catalogue, shops, share links and their clicks, external listings, orders and webhooks.

Orders are read-only here: money, lines and events change only through the
actions, and every action calls a service in shops/services.py, which locks the
order, checks the transition and writes the event row.

Buyers' contact details (name, phone, email, address) are shown only to staff with
the `shops.view_buyer_contact` permission (the "support" group, and superusers).
Everyone else sees the name masked, no contact fields, and cannot search or filter
by them: a search that matches would tell them the value.
"""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import OuterRef, Prefetch, Q, Subquery
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from modeltranslation.admin import TranslationAdmin, TranslationStackedInline

from accounts.approvals import approval_pending_for, asked_message
from core.admin_tools import ChangedByActionsOnly, ReadOnlyAdmin, ViewOnlyAdmin, for_each_row
from core.admin_tools import ReadOnlyInline as SharedReadOnlyInline
from core.forms import add_service_errors
from core.masking import mask_name
from core.money import ZERO, format_money, format_rate
from core.phones import phone_e164
from referrals.models import Member
from shops.approvals import SHOP_CHANGE_OWNER, shop_change_owner_request
from shops.couriers import COURIER_CHOICES
from shops.models import (
    AttributionOptions,
    BuyerBinding,
    Category,
    ClickFlush,
    CouponCode,
    ExternalListing,
    Order,
    OrderEvent,
    OrderLine,
    Payment,
    Product,
    ProductMaterial,
    Refund,
    RefundLine,
    ShareLink,
    ShareLinkDailyStat,
    Shop,
    ShopEvent,
    ShopListing,
    WebhookEvent,
)
from shops.payments.methods import LABELS as PROVIDER_LABELS
from shops.payments.methods import METHODS_BY_BROWSER
from shops.selectors import attribution_options
from shops.services import (
    REFUNDABLE,
    ShopError,
    coupon_code_set_active,
    order_cancel,
    order_mark_completed,
    order_mark_shipped,
    order_refund,
    share_link_deactivate,
    shipment_clean,
    shop_listing_remove,
    shop_listing_set_featured,
)

# A line refund form for more orders than this is a mistake (e.g. "select all"), not a workflow; so is a shipping
# form.
REFUND_LINES_MAX_ORDERS = 20
SHIP_MAX_ORDERS = 20

BUYER_CONTACT_FIELDS = ("buyer_name", "buyer_phone", "buyer_email", "shipping_address")


def sees_buyer_contact(request) -> bool:
    """Active staff allowed to see buyers' names, phones, emails and addresses (Django caches the lookup)."""
    user = request.user
    return user.is_active and user.is_staff and user.has_perm("shops.view_buyer_contact")


def names_buyer_contact(lookup: str, path: str = "") -> bool:
    """Whether a changelist lookup (`buyer_phone__startswith`, `order__buyer_email`) reads a contact field."""
    prefix = f"{path}__" if path else ""
    return any(lookup == prefix + name or lookup.startswith(f"{prefix}{name}__") for name in BUYER_CONTACT_FIELDS)


class BuyerContactMixin:
    """A ModelAdmin showing buyers' contact (on the row, or through `buyer_contact_path`, e.g. "order").

    Without `shops.view_buyer_contact`: no contact fieldset, no contact search fields, and no URL filter on a
    contact field (`?buyer_phone__startswith=139` would tell the number digit by digit).
    """

    buyer_contact_path = ""  # "" when the contact fields are the model's own
    buyer_contact_fieldset_title = _("Buyer")
    contact_search_fields: tuple[str, ...] = ()

    def get_search_fields(self, request):
        fields = tuple(super().get_search_fields(request))
        if sees_buyer_contact(request):
            return fields + tuple(self.contact_search_fields)
        return fields

    def get_search_results(self, request, queryset, search_term):
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        # Phones are stored in E.164 form (core.phones): "138 0013 8000" finds "+8613800138000" too.
        phone = phone_e164(search_term) if self.contact_search_fields and sees_buyer_contact(request) else None
        if phone:
            prefix = f"{self.buyer_contact_path}__" if self.buyer_contact_path else ""
            results = results | queryset.filter(**{f"{prefix}buyer_phone": phone})
        return results, may_have_duplicates

    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if sees_buyer_contact(request):
            return fieldsets
        return [(title, options) for title, options in fieldsets if title != self.buyer_contact_fieldset_title]

    def lookup_allowed(self, lookup, value, request):
        if names_buyer_contact(lookup, self.buyer_contact_path) and not sees_buyer_contact(request):
            return False  # the changelist answers 400 (DisallowedModelAdminLookup), not a count
        return super().lookup_allowed(lookup, value, request)


# --- Catalogue ------------------------------------------------------------------


# Catalogue content is edited in both languages (django-modeltranslation, issue #23): the form shows each translated
# field once per language ("title [en]", "title [zh-hans]"); English is required and is what an empty Chinese
# value falls back to. Searches match either language. The plain (untabbed) TranslationAdmin: its tabbed variant
# loads jQuery UI from a CDN, which the CSP and the offline rule forbid.


class RowFieldsNamedForm(forms.ModelForm):
    """A changelist row's editable fields (list_editable) named for screen readers: the column heading is not
    their label, so each gets one saying what it is and which row it is in ("Active: Wool scarf")."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            if not field.widget.is_hidden:
                field.widget.attrs["aria-label"] = f"{field.label}: {self.instance}"


class RowFieldsNamed:
    """ModelAdmin mixin: the changelist's editable fields get names (RowFieldsNamedForm)."""

    def get_changelist_form(self, request, **kwargs):
        kwargs.setdefault("form", RowFieldsNamedForm)
        return super().get_changelist_form(request, **kwargs)


@admin.register(Category)
class CategoryAdmin(RowFieldsNamed, TranslationAdmin):
    list_display = ("name", "position")
    list_editable = ("position",)
    search_fields = ("name_en", "name_zh_hans")


class ProductForm(forms.ModelForm):
    class Meta:
        model = Product
        fields = ("title", "description", "image", "category", "price", "stock", "is_active", "commission_rate")

    def clean_commission_rate(self):
        """A product's pool pays the coupon discount (issue #22): its commission rate may not go below the discount
        rate in force while codes are in use, or a buyer's discount would be larger than the pool."""
        rate = self.cleaned_data["commission_rate"]
        options = attribution_options()
        if options.coupons_enabled and rate is not None and rate < options.coupon_discount_rate:
            raise forms.ValidationError(
                _(
                    "Members' coupon codes take %(discount)s off, paid from this commission: the commission rate "
                    "cannot be lower while they do. Lower the coupon discount in the compliance policy first."
                ),
                params={"discount": format_rate(options.coupon_discount_rate)},
                code="below_coupon_discount",
            )
        return rate

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "stock" in self.fields:
            # Compare against the stock the editor saw, not the stock at save time, so an untouched stock field
            # is not written back over units that checkouts took meanwhile (see ProductAdmin.save_model).
            self.fields["stock"].show_hidden_initial = True


class ProductMaterialInline(TranslationStackedInline):
    """The product's sharing materials: pictures and suggested words members post with their own link."""

    model = ProductMaterial
    fields = ("image", "text", "position", "is_active")
    extra = 0


@admin.register(Product)
class ProductAdmin(RowFieldsNamed, TranslationAdmin):
    form = ProductForm
    inlines = (ProductMaterialInline,)
    list_display = ("title", "category", "price", "stock", "is_active", "commission_rate", "updated_at")
    list_display_links = ("title",)
    list_editable = ("is_active",)
    list_filter = ("is_active", "category")
    search_fields = ("title_en", "title_zh_hans", "description_en", "description_zh_hans")
    list_select_related = ("category",)
    list_per_page = 50
    show_full_result_count = False
    readonly_fields = ("created_at", "updated_at")

    def save_model(self, request, obj, form, change):
        if not change:
            obj.save()
            return
        # Write only what the editor changed: a full-row save would put back the stock read when the form was
        # opened and undo checkouts that happened since.
        columns = {field.name for field in obj._meta.concrete_fields}
        changed = [name for name in form.changed_data if name in columns]
        if changed:
            obj.save(update_fields=[*changed, "updated_at"])


# --- Shops ----------------------------------------------------------------------


class ShopListingInline(admin.TabularInline):
    model = ShopListing
    fields = ("product", "position", "is_featured", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("product",)
    extra = 0
    ordering = ("position", "pk")


class ShopEventInline(SharedReadOnlyInline):
    model = ShopEvent
    fields = ("created_at", "kind", "old_owner", "new_owner", "actor", "reason")
    parent_permissions = ("shops.view_shop", "shops.change_shop")
    verbose_name_plural = _("owner changes")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("shop", "actor", "old_owner__user", "new_owner__user")


class ShopOwnerForm(forms.Form):
    new_owner = forms.CharField(
        label=_("New owner"),
        max_length=254,
        help_text=_("The member's invite code or email. They must be active and have no shop."),
    )
    reason = forms.CharField(
        label=_("Reason"),
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Kept in the audit log with your name."),
    )

    def clean_new_owner(self):
        value = self.cleaned_data["new_owner"].strip()
        member = (
            Member.objects.select_related("user")
            .filter(Q(invite_code=value.upper()) | Q(user__email__iexact=value))
            .order_by("pk")
            .first()
        )
        if member is None:
            raise forms.ValidationError(_("No member has this invite code or email."))
        return member


@admin.register(Shop)
class ShopAdmin(admin.ModelAdmin):
    """Shops. The owner is read-only here for everyone: it changes only on the "Change owner" page, which calls
    shops.services.shop_change_owner (audited, with a reason) and needs shops.change_shop_owner."""

    list_display = ("name", "slug", "owner", "is_open", "closes_at", "created_at")
    list_filter = ("is_open", "created_at")
    search_fields = ("name", "slug", "owner__user__email", "owner__invite_code")
    list_select_related = ("owner__user",)
    raw_id_fields = ("owner",)
    # Closing at once (an abusive shop): untick "open". `closes_at` is the owner's closing notice (issue #24), set only
    # through shops.services.shop_close_announce.
    fields = ("owner", "name", "slug", "description", "logo", "is_open", "closes_at", "created_at")
    readonly_fields = ("closes_at", "created_at")
    inlines = (ShopListingInline, ShopEventInline)
    show_full_result_count = False
    actions = ("change_owner",)
    change_form_template = "admin/shops/shop/change_form.html"

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return self.readonly_fields  # a new shop's first owner is chosen here; after that, never
        return (*self.readonly_fields, "owner")

    def get_urls(self):
        owner = path(
            "<path:object_id>/owner/",
            self.admin_site.admin_view(self.owner_view),
            name="shops_shop_change_owner",
        )
        return [owner, *super().get_urls()]

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_owner_permission(request):
            actions.pop("change_owner", None)
        return actions

    def has_change_owner_permission(self, request) -> bool:
        return request.user.is_active and request.user.is_staff and request.user.has_perm("shops.change_shop_owner")

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {**(extra_context or {}), "can_change_owner": self.has_change_owner_permission(request)}
        return super().change_view(request, object_id, form_url, extra_context)

    @admin.action(description=_("Give the shop to another member…"))
    def change_owner(self, request, queryset):
        shops = list(queryset[:2])
        if len(shops) != 1:
            self.message_user(request, _("Choose exactly one shop."), messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:shops_shop_change_owner", args=[shops[0].pk]))

    def owner_view(self, request, object_id):
        if not self.has_change_owner_permission(request):
            raise PermissionDenied
        shop = self.get_object(request, unquote(object_id))
        if shop is None:
            raise Http404(_("No such shop."))
        form = ShopOwnerForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            # Four eyes: checked now, done when a second staff member approves it (shops/approvals.py).
            try:
                approval = shop_change_owner_request(
                    shop=shop,
                    new_owner=form.cleaned_data["new_owner"],
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                )
            except ValidationError as error:
                add_service_errors(form, error, field="new_owner")
            else:
                self.message_user(request, asked_message(approval), messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:shops_shop_change", args=[shop.pk]))
        context = {
            **self.admin_site.each_context(request),
            "title": _("Give %(shop)s to another member") % {"shop": shop},
            "opts": self.opts,
            "original": shop,
            "shop": shop,
            "form": form,
            "active_links": shop.share_links.filter(owner=shop.owner, is_active=True).count(),
            "external_listings": shop.external_listings.count(),
            "events": shop.events.select_related("actor", "old_owner__user", "new_owner__user")[:20],
            "pending": approval_pending_for(shop, SHOP_CHANGE_OWNER),
        }
        return TemplateResponse(
            request, "admin/shops/shop/change_owner.html", context, status=400 if form.errors else 200
        )


# --- Orders ---------------------------------------------------------------------


class ReadOnlyInline(SharedReadOnlyInline):
    parent_permissions = ("shops.view_order", "shops.change_order")


class OrderLineInline(ReadOnlyInline):
    model = OrderLine
    fields = ("product", "title", "unit_price", "quantity", "discount", "net_amount", "commission_rate",
              "refunded_quantity", "refunded_amount")  # fmt: skip

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("product")


class PaymentInline(ReadOnlyInline):
    model = Payment
    fields = ("provider", "method", "reference", "amount", "status", "created_at", "completed_at")


class RefundInline(ReadOnlyInline):
    model = Refund
    fields = ("created_at", "amount", "status", "refunded_lines", "reason", "actor", "provider_refund_id")

    def get_queryset(self, request):
        lines = RefundLine.objects.select_related("order_line").order_by("pk")
        # "order" because the inline prints each row's __str__, which names the order.
        return super().get_queryset(request).select_related("order", "actor").prefetch_related(Prefetch("lines", lines))

    @admin.display(description=_("lines"))
    def refunded_lines(self, refund):
        return ", ".join(f"{line.quantity} × {line.order_line.title}" for line in refund.lines.all())


class OrderEventInline(ReadOnlyInline):
    model = OrderEvent
    fields = ("created_at", "kind", "from_status", "to_status", "amount", "actor_label", "actor", "note", "detail")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order", "actor")  # __str__ names the order


class OrderRefundLinesForm(forms.Form):
    """Per order line a quantity to refund (0 to what is left), and one reason for the whole refund."""

    reason = forms.CharField(label=_("Reason"), max_length=500, widget=forms.Textarea(attrs={"rows": 3}))

    def __init__(self, data=None, *, lines: list[OrderLine]):
        super().__init__(data)
        self.lines = lines
        for line in lines:
            self.fields[self.field_name(line)] = forms.IntegerField(
                label=line.title,
                min_value=0,
                max_value=line.refundable_quantity,
                required=False,
                initial=0,
                widget=forms.NumberInput(attrs={"style": "width: 6em"}),
            )

    @staticmethod
    def field_name(line: OrderLine) -> str:
        return f"line_{line.pk}"

    def clean(self):
        cleaned = super().clean()
        if not self.errors and not any(self.quantities().values()):
            raise forms.ValidationError(_("Enter a quantity to refund for at least one line."))
        return cleaned

    def quantities(self) -> dict[int, dict[int, int]]:
        """{order id: {order line id: quantity}} for the lines with a quantity above 0; call after is_valid()."""
        chosen: dict[int, dict[int, int]] = {}
        for line in self.lines:
            quantity = self.cleaned_data.get(self.field_name(line)) or 0
            if quantity:
                chosen.setdefault(line.order_id, {})[line.pk] = quantity
        return chosen


class OrderShipmentForm(forms.Form):
    """Per order a courier and waybill number (both, checked as the service checks them: `shipment_clean`), and one
    optional note for every order shipped."""

    note = forms.CharField(label=_("Note"), max_length=500, required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, data=None, *, orders: list[Order]):
        super().__init__(data)
        self.orders = orders
        for order in orders:
            self.fields[f"courier_{order.pk}"] = forms.ChoiceField(
                label=_("Courier"), choices=[("", "---------"), *COURIER_CHOICES], initial=order.courier
            )
            self.fields[f"waybill_{order.pk}"] = forms.CharField(
                label=_("Waybill number"),
                max_length=64,  # what people paste, spaces included; the service checks the stored shape
                initial=order.waybill_number,
                widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            )

    def clean(self):
        cleaned = super().clean()
        for order in self.orders:
            courier, waybill = f"courier_{order.pk}", f"waybill_{order.pk}"
            if courier in self.errors or waybill in self.errors:
                continue
            try:
                cleaned[courier], cleaned[waybill] = shipment_clean(
                    courier=cleaned.get(courier), waybill=cleaned.get(waybill)
                )
            except ShopError as error:
                self.add_error(waybill if error.code == "waybill" else courier, error.messages)
        return cleaned

    def rows(self) -> list[dict]:
        return [
            {"order": order, "courier": self[f"courier_{order.pk}"], "waybill": self[f"waybill_{order.pk}"]}
            for order in self.orders
        ]

    def shipment(self, order: Order) -> tuple[str, str]:
        """(courier, waybill) for `order`; call after is_valid()."""
        return self.cleaned_data[f"courier_{order.pk}"], self.cleaned_data[f"waybill_{order.pk}"]


class PaymentProviderFilter(admin.SimpleListFilter):
    """Orders with a payment through a provider: the providers come from the settings (no query to list them)."""

    title = _("payment provider")
    parameter_name = "payment_provider"

    def lookups(self, request, model_admin):
        return [(name, PROVIDER_LABELS.get(name, name)) for name in settings.PAYMENT_PROVIDERS]

    def queryset(self, request, queryset):
        if self.value() is None:
            return queryset
        return queryset.filter(pk__in=Payment.objects.filter(provider=self.value()).values("order_id"))


ORDER_MAIN_FIELDS = ("number", "status", "shop", "sharer", "attribution", "share_link", "coupon_code", "total",
                     "refunded_total", "currency")  # fmt: skip


@admin.register(Order)
class OrderAdmin(BuyerContactMixin, ChangedByActionsOnly, admin.ModelAdmin):
    """Orders as the services left them. Nothing is edited by hand; the actions call the services."""

    list_display = ("number", "shop", "status", "payment_display", "total_display", "refunded_display", "buyer_name",
                    "created_at")  # fmt: skip
    list_filter = ("status", PaymentProviderFilter, "refunds__status", "created_at")
    search_fields = ("number",)
    contact_search_fields = ("buyer_phone", "buyer_email", "buyer_name")
    list_select_related = ("shop",)
    list_per_page = 50
    show_full_result_count = False
    date_hierarchy = "created_at"
    fieldsets = (
        (None, {"fields": ORDER_MAIN_FIELDS}),
        (_("Buyer"), {"fields": ("buyer_name", "buyer_phone", "buyer_email", "shipping_address")}),
        (_("Times"), {"fields": ("created_at", "paid_at", "shipped_at", "completed_at", "cancelled_at")}),
        (_("Shipment"), {"fields": ("courier", "waybill_number")}),
    )
    inlines = (OrderLineInline, PaymentInline, RefundInline, OrderEventInline)
    actions = ("ship_with_waybill", "mark_shipped", "mark_completed", "cancel_orders", "refund_in_full", "refund_lines")

    def get_queryset(self, request):
        # The latest payment's provider, method and status, for the list (one query, not one per row).
        latest = Payment.objects.filter(order=OuterRef("pk")).order_by("-created_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .select_related("shop", "sharer__user")
            .annotate(
                latest_payment_provider=Subquery(latest.values("provider")[:1]),
                latest_payment_method=Subquery(latest.values("method")[:1]),
                latest_payment_status=Subquery(latest.values("status")[:1]),
            )
        )

    def get_list_display(self, request):
        if sees_buyer_contact(request):
            return self.list_display
        return tuple("buyer_name_masked" if name == "buyer_name" else name for name in self.list_display)

    @admin.display(description=_("payment"))
    def payment_display(self, order):
        """The latest payment: "WeChat Pay · native · Pending"."""
        if not getattr(order, "latest_payment_status", None):
            return "—"
        provider = str(PROVIDER_LABELS.get(order.latest_payment_provider, order.latest_payment_provider))
        status = Payment.Status(order.latest_payment_status).label
        return " · ".join(part for part in (provider, order.latest_payment_method, str(status)) if part)

    def get_readonly_fields(self, request, obj=None):
        fields = [field.name for field in self.opts.fields]
        if not sees_buyer_contact(request):
            fields = [name for name in fields if name not in BUYER_CONTACT_FIELDS]
        return fields

    @admin.display(description=_("name"))
    def buyer_name_masked(self, order):
        return mask_name(order.buyer_name)

    def has_add_permission(self, request):
        return False  # orders are placed by buyers, through order_place

    def has_delete_permission(self, request, obj=None):
        return False  # money and its audit trail are never deleted

    @admin.display(description=_("total"), ordering="total")
    def total_display(self, order):
        return format_money(order.total)

    @admin.display(description=_("refunded"), ordering="refunded_total")
    def refunded_display(self, order):
        return format_money(order.refunded_total) if order.refunded_total else "—"

    def _for_each(self, request, queryset, service, success_message) -> int:
        """Call `service(order)` per order; a refusal is reported for that order and the rest go on."""
        return for_each_row(self, request, queryset.order_by("pk"), service, success_message, refusal=ShopError)

    @admin.action(description=_("Mark shipped with courier and waybill…"), permissions=["change"])
    def ship_with_waybill(self, request, queryset):
        """Paid orders become shipped with their courier and waybill number; shipped ones get them corrected. The
        service checks each again under the order's lock; a refusal is reported for its order."""
        orders = list(queryset.order_by("pk")[: SHIP_MAX_ORDERS + 1])
        if len(orders) > SHIP_MAX_ORDERS:
            self.message_user(
                request,
                _("Choose at most %(max)d orders to ship at once.") % {"max": SHIP_MAX_ORDERS},
                messages.ERROR,
            )
            return None
        chosen = len(orders)
        orders = [order for order in orders if order.status in (Order.Status.PAID, Order.Status.SHIPPED)]
        if not orders:
            self.message_user(request, _("None of the chosen orders is paid or on its way."), messages.ERROR)
            return None
        if len(orders) < chosen and "apply" not in request.POST:
            left_out = chosen - len(orders)
            message = ngettext(
                "%d chosen order is left out: it is not paid or on its way.",
                "%d chosen orders are left out: they are not paid or on their way.",
                left_out,
            )
            self.message_user(request, message % left_out, messages.WARNING)
        form = OrderShipmentForm(request.POST if "apply" in request.POST else None, orders=orders)
        if form.is_valid():
            note = form.cleaned_data["note"]
            self._for_each(
                request,
                Order.objects.filter(pk__in=[order.pk for order in orders]),
                lambda order: order_mark_shipped(
                    order=order,
                    actor=request.user,
                    note=note,
                    courier=form.shipment(order)[0],
                    waybill=form.shipment(order)[1],
                ),
                lambda count: (
                    ngettext("Recorded the shipment of %d order.", "Recorded the shipments of %d orders.", count)
                    % count
                ),
            )
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": _("Mark shipped with courier and waybill"),
            "opts": self.opts,
            "orders": orders,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/shops/order/ship.html", context)

    @admin.action(description=_("Mark shipped"), permissions=["change"])
    def mark_shipped(self, request, queryset):
        self._for_each(
            request,
            queryset,
            lambda order: order_mark_shipped(order=order, actor=request.user),
            lambda count: ngettext("Marked %d order shipped.", "Marked %d orders shipped.", count) % count,
        )

    @admin.action(description=_("Mark completed"), permissions=["change"])
    def mark_completed(self, request, queryset):
        self._for_each(
            request,
            queryset,
            lambda order: order_mark_completed(order=order, actor=request.user),
            lambda count: ngettext("Marked %d order completed.", "Marked %d orders completed.", count) % count,
        )

    @admin.action(description=_("Cancel unpaid orders (stock goes back)"), permissions=["change"])
    def cancel_orders(self, request, queryset):
        self._for_each(
            request,
            queryset,
            lambda order: order_cancel(
                order=order, actor=request.user, actor_label="staff", reason=str(_("Cancelled by staff."))
            ),
            lambda count: ngettext("Cancelled %d order.", "Cancelled %d orders.", count) % count,
        )

    @admin.action(description=_("Refund in full (what is not yet refunded)"), permissions=["change"])
    def refund_in_full(self, request, queryset):
        self._for_each(
            request,
            queryset,
            lambda order: order_refund(
                order=order, quantities=None, actor=request.user, reason=str(_("Refunded in full by staff."))
            ),
            lambda count: ngettext("Refunded %d order in full.", "Refunded %d orders in full.", count) % count,
        )

    @admin.action(description=_("Refund chosen lines…"), permissions=["change"])
    def refund_lines(self, request, queryset):
        orders = list(queryset.order_by("pk")[: REFUND_LINES_MAX_ORDERS + 1])
        if len(orders) > REFUND_LINES_MAX_ORDERS:
            self.message_user(
                request,
                _("Choose at most %(max)d orders to refund by line.") % {"max": REFUND_LINES_MAX_ORDERS},
                messages.ERROR,
            )
            return None
        lines_by_order: dict[int, list[OrderLine]] = {order.pk: [] for order in orders}
        for line in OrderLine.objects.filter(order__in=orders).order_by("order_id", "pk"):
            lines_by_order[line.order_id].append(line)
        # Only lines of paid orders with something left get an input; order_refund re-checks all of it under lock.
        refundable_lines = [
            line
            for order in orders
            if order.status in REFUNDABLE
            for line in lines_by_order[order.pk]
            if line.refundable_quantity > 0
        ]
        if not refundable_lines:
            self.message_user(request, _("None of the chosen orders has anything left to refund."), messages.ERROR)
            return None

        form = OrderRefundLinesForm(request.POST if "apply" in request.POST else None, lines=refundable_lines)
        if form.is_valid():
            refunded, amount = 0, ZERO
            chosen = form.quantities()
            for order in orders:
                if order.pk not in chosen:
                    continue
                try:
                    refund = order_refund(
                        order=order, quantities=chosen[order.pk], actor=request.user, reason=form.cleaned_data["reason"]
                    )
                except ShopError as error:
                    self.message_user(request, f"{order}: {' '.join(error.messages)}", messages.ERROR)
                    continue
                refunded += 1
                amount += refund.amount
            if refunded:
                message = ngettext(
                    "Refunded %(amount)s on %(count)d order.", "Refunded %(amount)s on %(count)d orders.", refunded
                )
                self.message_user(
                    request, message % {"amount": format_money(amount), "count": refunded}, messages.SUCCESS
                )
            return None

        refundable_ids = {line.pk for line in refundable_lines}
        groups = [
            {
                "order": order,
                "status": order.get_status_display(),
                "is_refundable": order.status in REFUNDABLE,
                "total": format_money(order.total),
                "refunded_total": format_money(order.refunded_total),
                "rows": [
                    {
                        "line": line,
                        "unit_price": format_money(line.unit_price),
                        "field": form[form.field_name(line)] if line.pk in refundable_ids else None,
                    }
                    for line in lines_by_order[order.pk]
                ],
            }
            for order in orders
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": _("Refund chosen lines"),
            "opts": self.opts,
            "orders": orders,
            "groups": groups,
            "form": form,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/shops/order/refund_lines.html", context)


# --- Webhooks -------------------------------------------------------------------


class WaitingFilter(admin.SimpleListFilter):
    """Payment notices recorded and not yet applied: a few at any time at a peak; one failing again and again (its
    attempts count) waits here for someone to look."""

    title = _("applied")
    parameter_name = "waiting"

    def lookups(self, request, model_admin):
        return [("yes", _("Waiting to be applied")), ("failing", _("Failing to apply"))]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(applied_at__isnull=True)
        if self.value() == "failing":
            return queryset.filter(applied_at__isnull=True, attempts__gt=0)
        return queryset


@admin.register(WebhookEvent)
class WebhookEventAdmin(ViewOnlyAdmin):
    """Every accepted webhook, as received. An audit trail: nothing here is added, changed or deleted."""

    list_display = ("received_at", "provider", "event_type", "event_id", "outcome", "applied_at", "attempts")
    list_filter = (WaitingFilter, "provider", "event_type", "received_at")
    search_fields = ("=event_id", "outcome")
    date_hierarchy = "received_at"
    list_per_page = 50
    show_full_result_count = False


# --- Order lines, payments, refunds and events on their own -----------------------
# Support staff look these up by an order number or a provider's reference; each also appears on its order's page.


@admin.register(OrderLine)
class OrderLineAdmin(ReadOnlyAdmin):
    list_display = ("order", "title", "product", "unit_price", "quantity", "discount", "net_amount",
                    "commission_rate", "refunded_quantity", "refunded_amount")  # fmt: skip
    list_filter = ("order__status",)
    search_fields = ("=order__number", "title")
    search_help_text = _("An exact order number, or the product's title.")
    list_select_related = ("order", "product")
    list_per_page = 100
    show_full_result_count = False
    fields = ("order", "product", "title", "unit_price", "quantity", "discount", "net_amount", "commission_rate",
              "refunded_quantity", "refunded_amount")  # fmt: skip


class PaymentMethodFilter(admin.SimpleListFilter):
    """Payments by method, the methods known to the checkout (no query to list them)."""

    title = _("method")
    parameter_name = "method"

    def lookups(self, request, model_admin):
        known = {method for providers in METHODS_BY_BROWSER.values() for methods in providers.values()
                 for method in methods}  # fmt: skip
        return [(method, method) for method in sorted(known)]

    def queryset(self, request, queryset):
        return queryset if self.value() is None else queryset.filter(method=self.value())


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = ("reference", "order", "provider", "method", "amount_display", "status", "created_at",
                    "completed_at")  # fmt: skip
    list_filter = ("status", "provider", PaymentMethodFilter, "created_at")
    search_fields = ("=reference", "=order__number")
    search_help_text = _("An exact payment reference or order number.")
    list_select_related = ("order",)
    date_hierarchy = "created_at"
    list_per_page = 100
    show_full_result_count = False
    fields = ("order", "provider", "method", "reference", "amount", "status", "created_at", "completed_at",
              "notify_url", "return_url")  # fmt: skip

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, payment):
        return format_money(payment.amount)


class RefundLineInline(SharedReadOnlyInline):
    model = RefundLine
    fields = ("order_line", "quantity", "amount")
    parent_permissions = ("shops.view_refund", "shops.change_refund")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("order_line")


@admin.register(Refund)
class RefundAdmin(BuyerContactMixin, ReadOnlyAdmin):
    """Refunds as order_refund wrote them (made from the order list's refund actions), with their lines."""

    buyer_contact_path = "order"
    list_display = ("id", "order", "created_at", "amount_display", "status", "refunded_lines", "order_buyer_name",
                    "reason", "actor", "provider_refund_id")  # fmt: skip
    list_display_links = ("id",)
    list_filter = ("status", "created_at")
    search_fields = ("=id", "=order__number", "=provider_refund_id")
    contact_search_fields = ("order__buyer_phone", "order__buyer_email", "order__buyer_name")
    search_help_text = _("A refund id, an exact order number or the provider's refund id.")
    list_select_related = ("order", "actor")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    list_per_page = 100
    show_full_result_count = False
    fieldsets = (
        (
            None,
            {"fields": ("order", "order_status", "payment", "amount_display", "status", "refunded_lines", "reason")},
        ),
        (_("Provider"), {"fields": ("actor", "provider_refund_id", "idempotency_key", "created_at")}),
        (_("Buyer"), {"fields": ("order_buyer_name", "order_buyer_phone", "order_buyer_email", "order_address")}),
    )
    inlines = (RefundLineInline,)

    def get_queryset(self, request):
        lines = RefundLine.objects.select_related("order_line").order_by("pk")
        return super().get_queryset(request).select_related("order", "actor").prefetch_related(Prefetch("lines", lines))

    def get_list_display(self, request):
        if sees_buyer_contact(request):
            return self.list_display
        return tuple("order_buyer_name_masked" if name == "order_buyer_name" else name for name in self.list_display)

    @admin.display(description=_("amount"), ordering="amount")
    def amount_display(self, refund):
        return format_money(refund.amount)

    @admin.display(description=_("lines"))
    def refunded_lines(self, refund):
        return ", ".join(f"{line.quantity} × {line.order_line.title}" for line in refund.lines.all())

    @admin.display(description=_("order status"))
    def order_status(self, refund):
        return refund.order.get_status_display()

    @admin.display(description=_("buyer"))
    def order_buyer_name(self, refund):
        return refund.order.buyer_name

    @admin.display(description=_("buyer"))
    def order_buyer_name_masked(self, refund):
        return mask_name(refund.order.buyer_name)

    @admin.display(description=_("phone"))
    def order_buyer_phone(self, refund):
        return refund.order.buyer_phone

    @admin.display(description=_("email"))
    def order_buyer_email(self, refund):
        return refund.order.buyer_email

    @admin.display(description=_("address"))
    def order_address(self, refund):
        return refund.order.shipping_address


@admin.register(OrderEvent)
class OrderEventAdmin(ReadOnlyAdmin):
    """Every order transition, payment and refund. An audit trail: nothing here is added, changed or deleted."""

    list_display = ("created_at", "order", "kind", "from_status", "to_status", "amount", "actor_label", "actor", "note")
    list_filter = ("kind", "to_status", "created_at")
    search_fields = ("=order__number",)
    search_help_text = _("An exact order number.")
    list_select_related = ("order", "actor")
    date_hierarchy = "created_at"
    ordering = ("-created_at", "-pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("order", "kind", "from_status", "to_status", "amount", "actor_label", "actor", "note", "created_at")

    def has_change_permission(self, request, obj=None):
        return False


# --- Shop listings on their own -----------------------------------------------------


@admin.register(ShopListing)
class ShopListingAdmin(ReadOnlyAdmin):
    """Which shops list which product (e.g. before switching a product off); the actions call the shop services."""

    list_display = ("product", "shop", "position", "is_featured", "created_at")
    list_filter = ("is_featured", "created_at")
    search_fields = ("product__title_en", "product__title_zh_hans", "shop__name", "=shop__slug")
    search_help_text = _("A product's title, a shop's name or its exact slug.")
    list_select_related = ("product", "shop")
    list_per_page = 100
    show_full_result_count = False
    fields = ("shop", "product", "position", "is_featured", "created_at")
    actions = ("feature_listings", "unfeature_listings", "remove_listings")

    def _each(self, request, queryset, service, message) -> None:
        done = 0
        for listing in queryset.select_related("shop").order_by("pk"):
            try:
                service(listing)
                done += 1
            except ShopError as error:
                self.message_user(request, f"{listing}: {' '.join(error.messages)}", messages.ERROR)
        self.message_user(request, message % {"count": done}, messages.SUCCESS)

    def _set_featured(self, request, queryset, *, is_featured: bool, message) -> None:
        def set_featured(listing):
            shop_listing_set_featured(shop=listing.shop, listing_id=listing.pk, is_featured=is_featured)

        self._each(request, queryset, set_featured, message)

    @admin.action(description=_("Feature in their shops"), permissions=["change"])
    def feature_listings(self, request, queryset):
        self._set_featured(request, queryset, is_featured=True, message=_("Featured %(count)d listing(s)."))

    @admin.action(description=_("Stop featuring"), permissions=["change"])
    def unfeature_listings(self, request, queryset):
        self._set_featured(request, queryset, is_featured=False, message=_("Stopped featuring %(count)d listing(s)."))

    @admin.action(description=_("Remove from their shops"), permissions=["change"])
    def remove_listings(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda listing: shop_listing_remove(shop=listing.shop, listing_id=listing.pk),
            _("Removed %(count)d listing(s)."),
        )


# --- Share links and their clicks ---------------------------------------------------------


class ShareLinkDailyStatInline(admin.TabularInline):
    model = ShareLinkDailyStat
    fields = ("day", "clicks", "unique_visitors")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("-day",)

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ShareLink)
class ShareLinkAdmin(admin.ModelAdmin):
    list_display = ("code", "owner", "shop", "product", "campaign", "is_active", "created_at")
    list_filter = ("is_active", "created_at")
    search_fields = ("code", "campaign", "owner__invite_code", "owner__user__email", "shop__slug")
    list_select_related = ("owner__user", "shop", "product")
    raw_id_fields = ("owner", "shop", "product")
    readonly_fields = ("code", "owner", "shop", "product", "campaign", "is_active", "created_at")
    inlines = (ShareLinkDailyStatInline,)
    actions = ("switch_off",)

    def has_add_permission(self, request):
        return False  # members create links from their dashboard, through share_link_create

    def has_delete_permission(self, request, obj=None):
        return False  # orders point at links; switch them off instead

    @admin.action(description=_("Switch off (the link answers 404)"))
    def switch_off(self, request, queryset):
        count = 0
        for link in queryset.filter(is_active=True):
            share_link_deactivate(link=link)
            count += 1
        self.message_user(request, _("Switched off %(count)d link(s).") % {"count": count}, messages.SUCCESS)


@admin.register(ShareLinkDailyStat)
class ShareLinkDailyStatAdmin(ReadOnlyAdmin):
    """Clicks per link per day, as the click flush wrote them (also shown on each link's page)."""

    list_display = ("day", "link", "link_owner", "clicks", "unique_visitors")
    list_filter = ("day",)
    search_fields = ("=link__code", "link__owner__invite_code", "link__owner__user__email")
    search_help_text = _("A link's exact code, or its owner's invite code or email.")
    list_select_related = ("link__owner__user",)
    date_hierarchy = "day"
    ordering = ("-day", "-clicks", "pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("link", "link_owner", "day", "clicks", "unique_visitors")

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("link__owner__user")

    @admin.display(description=_("owner"))
    def link_owner(self, stat):
        return stat.link.owner


@admin.register(ClickFlush)
class ClickFlushAdmin(ReadOnlyAdmin):
    """Each batch of counted clicks the flush applied; its unique batch id is what makes a retry change nothing."""

    list_display = ("applied_at", "batch_id", "clicks")
    list_filter = ("applied_at",)
    search_fields = ("=batch_id",)
    date_hierarchy = "applied_at"
    ordering = ("-applied_at", "-pk")
    list_per_page = 100
    show_full_result_count = False
    fields = ("batch_id", "clicks", "applied_at")


# --- External products in shops ---------------------------------------------------------


@admin.register(ExternalListing)
class ExternalListingAdmin(ReadOnlyAdmin):
    list_display = ("shop", "product", "position", "created_at")
    list_select_related = ("shop", "product__network")
    search_fields = ("shop__name", "product__title")


# --- Attribution options (issue #22) ---------------------------------------------------------------------------


@admin.register(AttributionOptions)
class AttributionOptionsAdmin(ViewOnlyAdmin):
    """The options in force, as the last published compliance policy set them (change them there)."""

    list_display = ("policy_version", "binding_days", "binding_mode", "coupons_enabled", "coupon_discount_rate",
                    "own_code_allowed", "updated_at")  # fmt: skip


@admin.register(CouponCode)
class CouponCodeAdmin(ReadOnlyAdmin):
    """Members' personal codes. Staff switch a code off (a buyer typing it is told it can no longer be used) or back
    on; each switch is logged in the admin history."""

    list_display = ("code", "owner", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("=code", "owner__user__email")
    list_select_related = ("owner__user",)
    fields = ("code", "owner", "is_active", "created_at")
    actions = ("switch_off", "switch_on")

    def _switch(self, request, queryset, is_active: bool, message):
        def change(code):
            coupon_code_set_active(code=code, is_active=is_active)
            self.log_change(request, code, message)

        for_each_row(self, request, queryset, change, lambda n: message, refusal=ShopError)

    @admin.action(description=_("Switch the selected codes off"), permissions=["change"])
    def switch_off(self, request, queryset):
        self._switch(request, queryset, False, _("Coupon code switched off."))

    @admin.action(description=_("Switch the selected codes back on"), permissions=["change"])
    def switch_on(self, request, queryset):
        self._switch(request, queryset, True, _("Coupon code switched on."))


@admin.register(BuyerBinding)
class BuyerBindingAdmin(ViewOnlyAdmin):
    """Every buyer binding (锁客), open and ended: its own audit trail."""

    list_display = ("buyer_key", "member", "order", "started_at", "expires_at", "ended_at", "end_reason",
                    "policy_version")  # fmt: skip
    list_filter = ("end_reason",)
    search_fields = ("=order__number",)
    search_help_text = _("An exact order number.")
    list_select_related = ("member__user", "order")
    fields = list_display

    def _masked(self, names, request):
        # A buyer's phone is their contact: shown to staff who may see contacts, masked to everyone else.
        if sees_buyer_contact(request):
            return names
        return tuple("buyer_masked" if name == "buyer_key" else name for name in names)

    def get_list_display(self, request):
        return self._masked(self.list_display, request)

    def get_fields(self, request, obj=None):
        return self._masked(self.fields, request)

    def get_readonly_fields(self, request, obj=None):
        return self.get_fields(request, obj)

    @admin.display(description=_("buyer"))
    def buyer_masked(self, binding):
        kind, _sep, value = binding.buyer_key.partition(":")
        return f"phone:{value[:4]}****{value[-2:]}" if kind == "phone" else binding.buyer_key
