"""Buyer pages (no login), the share-link redirect /l/, the sandbox provider's hosted page and webhook. The owner's
shop pages are members/views/shop.py."""

import logging
from datetime import timedelta
from urllib.parse import urlsplit

import segno
from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from core.client_ip import client_ip
from core.csp import allow_images_from, allow_scripts_from
from core.device import device_key
from core.forms import add_service_errors
from core.machine import machine_endpoint
from core.ratelimit import ip_key, parse_rate, rate_limit, rate_limited_response
from core.site_url import absolute_url
from core.sms import phone_masked
from networks.selectors import image_origins
from shops import checkout as checkout_session
from shops import selectors
from shops.attribution import attribution_cookie_set, attribution_from_request
from shops.cart import Cart, may_see_order, remember_order
from shops.clicks import LIMITED
from shops.forms import CartQuantityForm, CheckoutForm, OrderLookupForm, PhoneCodeForm, PhoneForm, QuantityForm
from shops.models import Order, Payment, Shop
from shops.payments import WebhookRejected, wechat_oauth
from shops.payments import sandbox as sandbox_provider
from shops.payments.base import Buyer, ProviderError, mask
from shops.payments.fakes.wechatpay import fake_code_url_page
from shops.payments.methods import LABELS, PaymentMethod, browser_kind, payment_methods
from shops.phone_codes import buyer_phone_remember, buyer_phone_verified, phone_code_check, phone_code_send
from shops.services import (
    BuyerDetails,
    PaidMeanwhile,
    ShopError,
    coupon_quote,
    order_payments_close,
    order_place,
    payment_start_method,
    payment_webhook_receive,
    payments_sync_due,
    share_link_follow,
)
from shops.services import order_cancel_by_buyer as order_cancel_by_buyer_service
from shops.wechat_share import in_wechat

logger = logging.getLogger(__name__)


def _shop_or_404(slug: str, *, closed: bool = False) -> Shop:
    """The shop at `slug`; Http404 if there is none, or (unless `closed`) if it has closed for good."""
    shop = selectors.shop_by_slug(slug)
    if shop is None or (shop.is_closed() and not closed):
        raise Http404(_("No shop lives at this address."))
    return shop


def _shop_closed_page(request, shop: Shop):
    """A closed shop's pages: 410 Gone, saying so kindly (its buyers' orders are still found by number)."""
    return render(request, "shops/shop_closed.html", {"shop": shop}, status=410)


def _allow_wechat_share_script(request, response):
    """WeChat's JS-SDK, for the share card (shops/wechat_share.py): only when it is on and the page is in WeChat."""
    if settings.WECHAT_JSSDK_TICKET_PROVIDER and in_wechat(request):
        parts = urlsplit(settings.WECHAT_JSSDK_SCRIPT_URL)
        allow_scripts_from(response, [f"{parts.scheme}://{parts.netloc}"])
    return response


def shop_home(request, slug: str):
    shop = _shop_or_404(slug, closed=True)
    if shop.is_closed():
        return _shop_closed_page(request, shop)
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
    return _allow_wechat_share_script(request, response)


@require_http_methods(["GET", "POST"])
def product_detail(request, slug: str, product_id: int):
    shop = _shop_or_404(slug, closed=True)
    if shop.is_closed():
        return _shop_closed_page(request, shop)
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
    response = render(
        request,
        "shops/product.html",
        {"shop": shop, "product": product, "form": form, "for_sale": for_sale, "cart_count": cart.count()},
        status=400 if request.method == "POST" and form.errors else 200,
    )
    return _allow_wechat_share_script(request, response)


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


def _methods(request) -> list[PaymentMethod]:
    return payment_methods(request.headers.get("User-Agent", ""))


def _start_payment(request, order: Order, method_key: str = ""):
    """Pay `order` with the method the buyer chose (`method_key`, "provider:method"; the first that fits the browser
    if none): close the order's earlier payments at their providers, open a new one, and send the browser on."""
    methods = _methods(request)
    method = next((m for m in methods if m.key == method_key), None) if method_key else next(iter(methods), None)
    if method is None:
        messages.error(request, _("This way to pay is not available in this browser. Choose another."))
        return redirect("shops:order_detail", number=order.number)
    openid = checkout_session.openid(request.session)
    if method.key == "wechatpay:jsapi" and not openid:
        return _wechat_oauth_begin(request, order, method)
    try:
        # Only one payment of an order can be paid: an earlier one (a QR code left open, another method) is closed
        # at its provider first, or, if the buyer paid it after all, applied; then there is nothing more to pay.
        order_payments_close(order=order)
    except ProviderError:
        messages.error(request, _("The payment could not be started. Please try again."))
        return redirect("shops:order_detail", number=order.number)
    if not Order.objects.filter(pk=order.pk, status=Order.Status.PENDING_PAYMENT).exists():
        return redirect("shops:order_detail", number=order.number)  # paid after all (or cancelled): the page says so
    try:
        payment, action = payment_start_method(
            order=order,
            provider_name=method.provider,
            method=method.method,
            buyer=Buyer(client_ip=client_ip(request), openid=openid),
            # From SITE_URL, never from the Host header: its port is not checked (ALLOWED_HOSTS matches names only),
            # and the provider would post the signed webhook, and send the buyer back, wherever the client said.
            notify_url=absolute_url(reverse("shops:payment_webhook", args=[method.provider])),
            return_url=absolute_url(reverse("shops:order_detail", args=[order.number])),
        )
    except ShopError as error:  # the provider refused or cannot be reached: the order page offers "Pay again"
        messages.error(request, " ".join(error.messages))
        return redirect("shops:order_detail", number=order.number)
    if action.kind == "redirect" and action.url.startswith("/") and not action.url.startswith("//"):
        return redirect(action.url)  # a page of ours (the sandbox's)
    step = {"kind": action.kind, "reference": payment.reference, "provider": method.provider}
    step.update(url=action.url, qr_text=action.qr_text, jsapi_params=action.jsapi_params)
    checkout_session.step_keep(request.session, order.number, step)
    # Through a page of ours: a form's answer may not send the browser to another site (the CSP's form-action).
    return redirect("shops:order_paying", number=order.number)


def _wechat_oauth_begin(request, order: Order, method: PaymentMethod):
    """Ask WeChat who the buyer is (silently): the browser comes back to `wechat_oauth_return`, which pays."""
    state = checkout_session.oauth_begin(request.session, number=order.number, method=method.key)
    url = wechat_oauth.authorize_url(absolute_url(reverse("shops:wechat_oauth_return")), state)
    checkout_session.step_keep(request.session, order.number, {"kind": "oauth", "url": url, "provider": "wechatpay"})
    return redirect("shops:order_paying", number=order.number)


@require_GET
def wechat_oauth_return(request):
    """WeChat sends the buyer back here with `code` and `state`: a state this session sent (once, recently), a code
    WeChat exchanges for the openid, then the payment the buyer chose starts."""
    pending = checkout_session.oauth_finish(request.session, request.GET.get("state", ""))
    number = pending["order"] if pending else ""
    if not pending or not may_see_order(request.session, number):
        logger.warning("WeChat OAuth return refused: no matching state in this session")
        return render(request, "shops/wechat_oauth_refused.html", status=400)
    checkout_session.step_drop(request.session, number)
    try:
        openid = wechat_oauth.openid_for_code(request.GET.get("code", ""))
    except wechat_oauth.WeChatOAuthError as error:
        logger.warning("WeChat OAuth for order %s failed: %s", number, error)
        message = _("WeChat could not tell us who you are, so WeChat Pay cannot start. Please try again.")
        messages.error(request, message)
        return redirect("shops:order_detail", number=number)
    logger.info("WeChat OAuth for order %s: openid %s", number, mask(openid))
    checkout_session.openid_keep(request.session, openid)
    order = selectors.order_for_buyer(number)
    if order is None or order.status != Order.Status.PENDING_PAYMENT:
        return redirect("shops:order_detail", number=number)
    return _start_payment(request, order, pending["method"])


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
    methods = _methods(request)
    coupons = selectors.attribution_options().coupons_enabled
    if coupons and "apply_coupon" in request.POST:
        return _checkout_coupon_applied(request, shop, lines, methods)
    form = CheckoutForm(request.POST or None, methods=methods, coupons=coupons)
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
                coupon_code=data.get("coupon_code", ""),
                # Hashed, kept for the fraud rules (issue #25): the buyer's network address and device cookie.
                network_key=ip_key(client_ip(request)),
                device_key=device_key(request),
            )
        except ShopError as error:
            add_service_errors(form, error)
        else:
            cart.clear()
            remember_order(request.session, order.number)
            if not methods:  # the order page says why and what to do
                return redirect("shops:order_detail", number=order.number)
            return _start_payment(request, order, data.get("method", ""))
    return render(
        request,
        "shops/checkout.html",
        {
            "shop": shop,
            "lines": [_checkout_row(line, None) for line in lines],
            "total": selectors.cart_total(lines),
            "form": form,
            "methods": methods,
            "browser": browser_kind(request.headers.get("User-Agent", "")),
        },
        status=400 if form.errors else 200,
    )


def _checkout_row(line, discount):
    """(cart line, its coupon discount or None, what the buyer pays for it) for the checkout page."""
    return line, discount, line.line_total - (discount or 0)


def _checkout_coupon_applied(request, shop, lines, methods):
    """The checkout again, with what the typed coupon code takes off each line (or why it cannot be used), and
    what the buyer typed kept in the fields; nothing is ordered and no other field is checked yet."""
    form = CheckoutForm(initial=request.POST.dict(), methods=methods, coupons=True)
    buyer = BuyerDetails(
        name="", phone=request.POST.get("phone", "")[:32], email=request.POST.get("email", "")[:254], address=""
    )
    quote, coupon_error = None, ""
    try:
        quote = coupon_quote(typed=request.POST.get("coupon_code", "")[:20], lines=lines, buyer=buyer,
                             buyer_user=request.user)  # fmt: skip
    except ShopError as error:
        coupon_error = " ".join(error.messages)
    return render(
        request,
        "shops/checkout.html",
        {
            "shop": shop,
            "lines": [_checkout_row(line, quote.discounts.get(line.product.pk) if quote else None) for line in lines],
            "total": quote.total if quote else selectors.cart_total(lines),
            "quote": quote,
            "coupon_error": coupon_error,
            "form": form,
            "methods": methods,
            "browser": browser_kind(request.headers.get("User-Agent", "")),
        },
        status=400 if coupon_error else 200,
    )


def _buyer_order_or_404(request, number: str) -> Order:
    if not may_see_order(request.session, number):
        raise Http404(_("Order not found. Look it up with its number and your phone or email."))
    order = selectors.order_for_buyer(number)
    if order is None:
        raise Http404(_("Order not found."))
    return order


def _buyer_order_synced(request, number: str) -> Order:
    """The buyer's order, after asking the providers about its pending payments if it is time to (a notification
    late or lost is repaired while the buyer waits: shops.services.payments_sync_due)."""
    order = _buyer_order_or_404(request, number)
    if order.status == Order.Status.PENDING_PAYMENT and payments_sync_due(payments=list(order.payments.all())):
        order = _buyer_order_or_404(request, number)
    return order


def _pending_step(request, order: Order) -> dict | None:
    """The next step of paying `order` kept in this session, while its payment is still the one to pay."""
    step = checkout_session.step(request.session, order.number)
    if step is None or order.status != Order.Status.PENDING_PAYMENT:
        return None
    if step["kind"] == "oauth":
        return step
    payments = list(order.payments.all())  # newest first
    if not payments or payments[0].reference != step.get("reference") or payments[0].status != Payment.Status.PENDING:
        return None
    return step


def order_detail(request, number: str):
    order = _buyer_order_synced(request, number)
    step = _pending_step(request, order)
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
            "methods": _methods(request) if order.status == Order.Status.PENDING_PAYMENT else [],
            "browser": browser_kind(request.headers.get("User-Agent", "")),
            "step": step if step and step["kind"] in ("qr", "jsapi") else None,
            # Once paid, how it goes: paid, shipped (courier, waybill, tracking link), completed, refunds.
            "timeline": selectors.order_timeline(order) if order.paid_at else [],
        },
    )


@require_GET
@never_cache
def order_state(request, number: str):
    """How the order stands, for the "paying" page's script: {"code": BuyerOrderState.code, "status": …}."""
    order = _buyer_order_synced(request, number)
    return JsonResponse({"code": selectors.order_buyer_state(order).code, "status": order.status})


@require_GET
@never_cache
def order_paying(request, number: str):
    """The step between choosing a way to pay and paying: the QR code to scan (WeChat Pay Native), the button that
    opens WeChat Pay (JSAPI), or a page that sends the browser on to the provider (or to WeChat's OAuth)."""
    order = _buyer_order_synced(request, number)
    step = _pending_step(request, order)
    if step is None:
        return redirect("shops:order_detail", number=number)
    payment = next((p for p in order.payments.all() if p.reference == step.get("reference")), None)
    context = {"order": order, "shop": order.shop, "step": step, "payment": payment, "methods": _methods(request)}
    if step["kind"] in ("redirect", "oauth"):
        # Shown once: going back to this page later must not send the buyer away again.
        checkout_session.step_drop(request.session, number)
        context["provider_label"] = LABELS.get(step["provider"], step["provider"])
    elif step["kind"] == "qr":
        context["qr"] = segno.make(step["qr_text"], error="m").svg_data_uri(scale=6, border=2)
        if settings.DEBUG and settings.WECHATPAY_GATEWAY_URL.startswith("http://"):
            # `make run` with the local fakes: no phone can scan this, so the fake's page plays the buyer's WeChat.
            context["fake_pay_url"] = fake_code_url_page(settings.WECHATPAY_GATEWAY_URL, step["qr_text"])
    response = render(request, "shops/order_paying.html", context)
    if step["kind"] == "redirect":
        # WeChat Pay's H5 page checks that the Referer is the shop's registered domain; the site's policy
        # (same-origin) would send none to another site. The origin alone is enough and all that is sent.
        response["Referrer-Policy"] = "strict-origin-when-cross-origin"
    return response


@require_POST
def order_pay(request, number: str):
    order = _buyer_order_or_404(request, number)
    return _start_payment(request, order, request.POST.get("method", ""))


@require_POST
def order_cancel_by_buyer(request, number: str):
    order = _buyer_order_or_404(request, number)
    try:
        order_cancel_by_buyer_service(order=order)
        messages.success(request, _("Your order is cancelled."))
    except PaidMeanwhile as paid:
        messages.success(request, " ".join(paid.messages))
    except ShopError as error:
        messages.error(request, " ".join(error.messages))
    checkout_session.step_drop(request.session, number)
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


PENDING_PHONE_KEY = "buyer_phone_pending"  # the phone a code was sent to, waiting for the code


@sensitive_post_parameters("phone", "code")
@sensitive_variables("form", "phone")
@require_http_methods(["GET", "POST"])
@never_cache
def orders_by_phone(request):
    """The buyer's orders by phone: the phone, then the 6-digit code sent to it (shops.phone_codes), then the list.

    Step one says the same whether or not the phone has orders here (no one learns which numbers bought)."""
    if buyer_phone_verified(request.session):
        return redirect("shops:orders_by_phone_list")
    pending = request.session.get(PENDING_PHONE_KEY)
    step = "code" if pending and request.GET.get("step") != "phone" else "phone"
    phone_form, code_form = PhoneForm(), PhoneCodeForm()
    if request.method == "POST" and "phone" in request.POST:
        step, phone_form = "phone", PhoneForm(request.POST)
        if phone_form.is_valid():
            phone = phone_form.cleaned_data["phone"]
            sent = phone_code_send(phone=phone, client=ip_key(client_ip(request)))
            if sent.retry_after:
                return rate_limited_response(request, sent.retry_after)
            if sent.failed:
                phone_form.add_error(None, _("We could not send a text message just now. Please try again later."))
            else:
                request.session[PENDING_PHONE_KEY] = phone
                messages.info(request, _("If orders were placed with this number, we have texted it a 6-digit code."))
                return redirect(reverse("shops:orders_by_phone") + "?step=code")
    elif request.method == "POST" and pending:
        step, code_form = "code", PhoneCodeForm(request.POST)
        if code_form.is_valid():
            if phone_code_check(phone=pending, code=code_form.cleaned_data["code"].strip()):
                buyer_phone_remember(request.session, pending)
                request.session.pop(PENDING_PHONE_KEY, None)
                return redirect("shops:orders_by_phone_list")
            code_form.add_error("code", _("That code is wrong or has expired. Check it, or ask for a new one."))
    elif request.method == "POST":
        return redirect("shops:orders_by_phone")
    errors = phone_form.errors or code_form.errors
    return render(
        request,
        "shops/orders_by_phone.html",
        {
            "step": step,
            "phone_form": phone_form,
            "code_form": code_form,
            "pending": _masked(pending),
            "minutes": max(1, settings.PHONE_CODE_SECONDS // 60),
        },
        status=400 if errors else 200,
    )


def _masked(phone: str | None) -> str:
    return phone_masked(phone) if phone else ""


@require_GET
@never_cache
def orders_by_phone_list(request):
    """The orders placed with the phone this browser proved it holds (for PHONE_SESSION_SECONDS)."""
    phone = buyer_phone_verified(request.session)
    if phone is None:
        return redirect("shops:orders_by_phone")
    orders = selectors.orders_for_phone(phone)
    for order in orders:  # each opens on its own page like an order looked up by number
        remember_order(request.session, order.number)
    return render(request, "shops/orders_by_phone_list.html", {"orders": orders, "phone": _masked(phone)})


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


@machine_endpoint
@csrf_exempt
@require_POST
def payment_webhook(request, provider: str):
    try:
        result = payment_webhook_receive(provider_name=provider, body=request.body, headers=request.headers)
    except WebhookRejected as error:
        logger.warning("webhook from %s refused: %s", provider, error)
        return HttpResponseBadRequest(f"refused: {error}", content_type="text/plain")
    # A notice recorded for a worker to apply is logged when applied (a peak brings thousands a second).
    (logger.debug if result.outcome == "received" else logger.info)("webhook from %s: %s", provider, result.outcome)
    return HttpResponse(result.reply or result.outcome, content_type="text/plain")
