"""Buyer pages (no login), the share-link redirect /l/, the sandbox provider's hosted page and webhook. The owner's
shop pages are members/views/shop.py."""

import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from core.client_ip import client_ip
from core.csp import allow_images_from
from core.forms import add_service_errors
from core.ratelimit import ip_key, parse_rate, rate_limit, rate_limited_response
from core.site_url import absolute_url
from networks.selectors import image_origins
from shops import selectors
from shops.attribution import attribution_cookie_set, attribution_from_request
from shops.cart import Cart, may_see_order, remember_order
from shops.clicks import LIMITED
from shops.forms import CartQuantityForm, CheckoutForm, OrderLookupForm, QuantityForm
from shops.models import Order, Payment, Shop
from shops.payments import WebhookRejected
from shops.payments import sandbox as sandbox_provider
from shops.services import (
    BuyerDetails,
    ShopError,
    order_cancel,
    order_place,
    payment_start,
    payment_webhook_receive,
    share_link_follow,
)

logger = logging.getLogger(__name__)


def _shop_or_404(slug: str) -> Shop:
    shop = selectors.shop_by_slug(slug)
    if shop is None:
        raise Http404(_("No shop lives at this address."))
    return shop


def shop_home(request, slug: str):
    shop = _shop_or_404(slug)
    cart = Cart(request.session, shop.pk)
    external_rows = selectors.external_listing_rows(selectors.shop_external_listings(shop))
    response = render(
        request,
        "shops/shop_home.html",
        {
            "shop": shop,
            "listings": list(selectors.shop_listings(shop)),
            "external_rows": external_rows,
            "cart_count": cart.count(),
        },
    )
    allow_images_from(response, image_origins(row["product"] for row in external_rows))
    return response


@require_http_methods(["GET", "POST"])
def product_detail(request, slug: str, product_id: int):
    shop = _shop_or_404(slug)
    listing = selectors.shop_product(shop, product_id)
    if listing is None:
        raise Http404(_("This product is not in this shop."))
    product = listing.product
    cart = Cart(request.session, shop.pk)
    form = QuantityForm(request.POST or None, initial={"quantity": 1})
    for_sale = shop.is_open and product.is_active
    if request.method == "POST":
        if not for_sale:
            messages.error(request, _("This product is not for sale right now."))
        elif form.is_valid():
            wanted = cart.items().get(product.pk, 0) + form.cleaned_data["quantity"]
            in_cart = cart.add(product.pk, form.cleaned_data["quantity"])
            if in_cart < wanted:
                messages.warning(
                    request,
                    _("You can order at most %(max)d of a product at a time: your cart now has %(max)d of it.")
                    % {"max": in_cart},
                )
            else:
                messages.success(request, _("Added to your cart."))
            return redirect("shops:cart", slug=shop.slug)
    return render(
        request,
        "shops/product.html",
        {"shop": shop, "product": product, "form": form, "for_sale": for_sale, "cart_count": cart.count()},
        status=400 if request.method == "POST" and form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
def cart_view(request, slug: str):
    shop = _shop_or_404(slug)
    cart = Cart(request.session, shop.pk)
    lines = selectors.cart_lines(shop, cart.items())
    status = 200
    if request.method == "POST":
        try:
            product_id = int(request.POST.get("product", ""))
        except ValueError:
            return HttpResponseBadRequest(_("Which product?"))
        listing = selectors.shop_product(shop, product_id)
        if listing is None:
            return HttpResponseBadRequest(_("This product is not in this shop."))
        title = listing.product.title
        form = CartQuantityForm(request.POST)
        if "remove" in request.POST:
            cart.set(product_id, 0)
            messages.success(request, _("“%(title)s” is no longer in your cart.") % {"title": title})
            return redirect("shops:cart", slug=shop.slug)
        if form.is_valid() and form.cleaned_data["quantity"] == 0:
            cart.set(product_id, 0)
            message = _("You set “%(title)s” to 0, so it is no longer in your cart.") % {"title": title}
            messages.success(request, message)
            return redirect("shops:cart", slug=shop.slug)
        if form.is_valid():
            cart.set(product_id, form.cleaned_data["quantity"])
            messages.success(
                request,
                _("Your cart now has %(quantity)d of “%(title)s”.")
                % {"quantity": form.cleaned_data["quantity"], "title": title},
            )
            return redirect("shops:cart", slug=shop.slug)
        # Nothing changed: say why, on the page with the cart as it is.
        messages.error(request, _("“%(title)s”: %(problem)s") % {"title": title, "problem": form.errors["quantity"][0]})
        status = 400
    return render(
        request,
        "shops/cart.html",
        {"shop": shop, "lines": lines, "total": selectors.cart_total(lines), "cart_count": cart.count()},
        status=status,
    )


def _start_payment(request, order: Order):
    provider = settings.PAYMENT_PROVIDER
    try:
        _payment, url = payment_start(
            order=order,
            provider_name=provider,
            # From SITE_URL, never from the Host header: its port is not checked (ALLOWED_HOSTS matches names only),
            # and the provider would post the signed webhook, and send the buyer back, wherever the client said.
            notify_url=absolute_url(reverse("shops:payment_webhook", args=[provider])),
            return_url=absolute_url(reverse("shops:order_detail", args=[order.number])),
        )
    except ShopError as error:  # the provider refused or cannot be reached: the order page offers "Pay again"
        messages.error(request, " ".join(error.messages))
        return redirect("shops:order_detail", number=order.number)
    return redirect(url)


@sensitive_post_parameters("name", "phone", "email", "address")
@sensitive_variables("buyer", "data", "form")
@require_http_methods(["GET", "POST"])
@rate_limit("checkout", "RATE_LIMIT_CHECKOUT")
def checkout(request, slug: str):
    shop = _shop_or_404(slug)
    cart = Cart(request.session, shop.pk)
    lines = selectors.cart_lines(shop, cart.items())
    if not lines:
        messages.info(request, _("Your cart is empty."))
        return redirect("shops:shop_home", slug=shop.slug)
    form = CheckoutForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        buyer = BuyerDetails(name=data["name"], phone=data["phone"], email=data["email"], address=data["address"])
        attribution = attribution_from_request(request)
        try:
            order = order_place(
                shop=shop,
                items={line.product.pk: line.quantity for line in lines},
                buyer=buyer,
                sharer=attribution.sharer if attribution else None,
                share_link=attribution.link if attribution else None,
                buyer_user=request.user,
                client_key=ip_key(client_ip(request)),  # unpaid units are limited per address too
            )
        except ShopError as error:
            add_service_errors(form, error)
        else:
            cart.clear()
            remember_order(request.session, order.number)
            return _start_payment(request, order)
    return render(
        request,
        "shops/checkout.html",
        {"shop": shop, "lines": lines, "total": selectors.cart_total(lines), "form": form},
        status=400 if form.errors else 200,
    )


def _buyer_order_or_404(request, number: str) -> Order:
    if not may_see_order(request.session, number):
        raise Http404(_("Order not found. Look it up with its number and your phone or email."))
    order = selectors.order_for_buyer(number)
    if order is None:
        raise Http404(_("Order not found."))
    return order


def order_detail(request, number: str):
    order = _buyer_order_or_404(request, number)
    return render(
        request,
        "shops/order.html",
        {
            "order": order,
            "shop": order.shop,
            "state": selectors.order_buyer_state(order),
            "timeout_minutes": settings.ORDER_PAYMENT_TIMEOUT_MINUTES,
            # The periodic task cancels it after this (shops.services.orders_cancel_expired).
            "pay_before": order.created_at + timedelta(minutes=settings.ORDER_PAYMENT_TIMEOUT_MINUTES),
        },
    )


@require_POST
def order_pay(request, number: str):
    order = _buyer_order_or_404(request, number)
    return _start_payment(request, order)


@require_POST
def order_cancel_by_buyer(request, number: str):
    order = _buyer_order_or_404(request, number)
    try:
        order_cancel(order=order, actor_label="buyer", reason=_("Cancelled by the buyer."))
        messages.success(request, _("Your order is cancelled."))
    except ShopError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("shops:order_detail", number=number)


@sensitive_post_parameters("contact")
@sensitive_variables("form")
@require_http_methods(["GET", "POST"])
@rate_limit("order_lookup", "RATE_LIMIT_ORDER_LOOKUP")  # guessing order numbers and contacts
def order_lookup(request):
    form = OrderLookupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        order = selectors.order_lookup(form.cleaned_data["number"], form.cleaned_data["contact"])
        if order is not None:
            remember_order(request.session, order.number)
            return redirect("shops:order_detail", number=order.number)
        form.add_error(None, _("No order matches that number and phone or email."))
    return render(request, "shops/order_lookup.html", {"form": form}, status=400 if form.errors else 200)


# --- The share-link redirect /l/<code> (SPEC §5) ------------------------------------


NEVER_CACHE = {
    "Expires": "Thu, 01 Jan 1970 00:00:00 GMT",
    "Cache-Control": "max-age=0, no-cache, no-store, must-revalidate, private",
}


@require_http_methods(["GET", "HEAD"])
def share_link_redirect(request, code: str):
    """The hot path: one Redis call (cached target and click count), a signed cookie, a 302. No database write."""
    ip = client_ip(request)
    followed = share_link_follow(code=code, ip=ip, user_agent=request.META.get("HTTP_USER_AGENT", ""))
    if followed == LIMITED:  # over RATE_LIMIT_REDIRECT: nothing was counted, no cookie
        return rate_limited_response(request, retry_after=parse_rate(settings.RATE_LIMIT_REDIRECT)[1])
    if followed is None:
        return render(request, "shops/link_not_found.html", status=404)
    target = followed.target
    response = HttpResponseRedirect(target.url)
    # What add_never_cache_headers() sets (every click must reach us, never a cache), without its header parsing.
    for header, value in NEVER_CACHE.items():
        response[header] = value
    if followed.counted:
        attribution_cookie_set(request, response, sharer_id=target.owner_id, link_id=target.link_id)
    return response


# --- The sandbox provider's hosted page and the webhook endpoint -------------------


@require_http_methods(["GET", "POST"])
def sandbox_pay(request, reference: str):
    payment = get_object_or_404(Payment.objects.select_related("order__shop"), provider="sandbox", reference=reference)
    if request.method == "POST":
        outcome = request.POST.get("outcome")
        if outcome not in ("succeeded", "failed"):
            return HttpResponseBadRequest(_("Choose pay or decline."))
        if payment.status == Payment.Status.PENDING:
            sandbox_provider.send_webhook(payment, outcome)
        return redirect(payment.return_url)
    return render(request, "shops/sandbox_pay.html", {"payment": payment, "order": payment.order})


@csrf_exempt
@require_POST
def payment_webhook(request, provider: str):
    try:
        result = payment_webhook_receive(provider_name=provider, body=request.body, headers=request.headers)
    except WebhookRejected as error:
        logger.warning("webhook from %s refused: %s", provider, error)
        return HttpResponseBadRequest(f"refused: {error}", content_type="text/plain")
    logger.info("webhook from %s: %s", provider, result.outcome)
    return HttpResponse(result.reply or result.outcome, content_type="text/plain")
