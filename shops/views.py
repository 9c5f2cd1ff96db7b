"""Buyer pages (no login), the share-link redirect /l/, the sandbox provider's hosted page and webhook, and the owner's
shop pages."""

import copy
import logging
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponse, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST

from core.client_ip import client_ip
from core.forms import add_service_errors
from core.ratelimit import ip_key, parse_rate, rate_limit, rate_limited_response
from core.site_url import absolute_url
from networks import selectors as network_selectors
from networks.services import NetworkError
from referrals.decorators import member_required
from shops import selectors
from shops.attribution import attribution_cookie_set, attribution_from_request
from shops.cart import Cart, may_see_order, remember_order
from shops.clicks import LIMITED
from shops.forms import CartQuantityForm, CheckoutForm, OrderLookupForm, QuantityForm, ShopForm
from shops.models import Category, Order, Payment, Shop
from shops.payments import WebhookRejected
from shops.payments import sandbox as sandbox_provider
from shops.services import (
    BuyerDetails,
    ShopError,
    external_listing_add,
    external_listing_remove,
    order_cancel,
    order_place,
    payment_start,
    payment_webhook_receive,
    share_link_follow,
    shop_listing_add,
    shop_listing_remove,
    shop_listing_reorder,
    shop_listing_set_featured,
    shop_open,
    shop_update,
)

logger = logging.getLogger(__name__)


def _shop_or_404(slug: str) -> Shop:
    shop = selectors.shop_by_slug(slug)
    if shop is None:
        raise Http404(_("No shop lives at this address."))
    return shop


def _external_rows(listings) -> list[dict]:
    """Listings of external products as the templates show them; a picture only from a plain http(s) address."""
    return [
        {
            "listing": listing,
            "product": listing.product,
            "is_offered": listing.product.is_active and listing.product.network.is_enabled,
            "has_image": network_selectors.image_origin(listing.product.image_url) is not None,
        }
        for listing in listings
    ]


def _allow_images_from(response, products) -> None:
    """Let the page show the networks' product pictures: their hosts join img-src for this response only."""
    origins = network_selectors.image_origins(products)
    if origins:
        response._csp_update = {"img-src": origins}
        response._csp_update_ro = {"img-src": origins}


def shop_home(request, slug: str):
    shop = _shop_or_404(slug)
    cart = Cart(request.session, shop.pk)
    external_rows = _external_rows(selectors.shop_external_listings(shop))
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
    _allow_images_from(response, [row["product"] for row in external_rows])
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


# --- The owner's shop pages ------------------------------------------------------------


CATALOGUE_PAGE_SIZE = 20
SEARCH_MAX_LENGTH = 100


@member_required
@require_http_methods(["GET", "POST"])
def my_shop(request):
    """Open the shop, or edit its name, address, description, logo and open/closed; nothing is saved on error."""
    member = request.member
    shop = selectors.owner_shop(member)
    # The form works on a copy, so a refused POST leaves the page's own `shop` (its address, its logo) as saved.
    form = ShopForm(
        request.POST if request.method == "POST" else None,
        request.FILES if request.method == "POST" else None,
        instance=copy.copy(shop) if shop else None,
        member=member,
    )
    if request.method == "POST" and form.is_valid():
        fields = form.shop_fields()
        try:
            if shop is None:
                shop_open(owner=member, **fields)
                messages.success(request, _("Your shop is open. Now pick the products it sells."))
                return redirect("shops:my_shop_catalogue")
            shop_update(shop=shop, **fields)
            messages.success(request, _("Your shop is saved."))
            return redirect("shops:my_shop")
        except ValidationError as error:
            add_service_errors(form, error)
    return render(
        request,
        "shops/my_shop.html",
        {"shop": shop, "form": form, "listing_count": shop.listings.count() if shop else 0, "tab": "details"},
        status=400 if form.errors else 200,
    )


def _owner_shop_or_redirect(request):
    shop = selectors.owner_shop(request.member)
    if shop is None:
        messages.info(request, _("Open your shop first."))
    return shop


def _post_id(request) -> int | None:
    try:
        return int(request.POST.get("id", ""))
    except ValueError:
        return None


@member_required
@require_http_methods(["GET", "POST"])
def my_shop_products(request):
    """The shop's listings in the order buyers see them: move up or down, feature, remove."""
    shop = _owner_shop_or_redirect(request)
    if shop is None:
        return redirect("shops:my_shop")
    if request.method == "POST":
        action, target = request.POST.get("action"), _post_id(request)
        if target is None:
            return HttpResponseBadRequest(_("Which product?"))
        page = reverse("shops:my_shop_products")
        if action == "add":  # kept for forms posted from older pages; the catalogue page adds products now
            _listing_add(request, shop, target)
            return redirect(page)
        listing = selectors.owner_listing(shop, target)
        if listing is None:  # not in this member's shop, whoever's it is
            raise Http404(_("That product is not in your shop."))
        title = listing.product.title
        try:
            if action in ("up", "down"):
                shop_listing_reorder(shop=shop, listing_id=target, offset=-1 if action == "up" else 1)
            elif action in ("feature", "unfeature"):
                shop_listing_set_featured(shop=shop, listing_id=target, is_featured=action == "feature")
                if action == "feature":
                    messages.success(request, _("“%(title)s” is featured: it shows first.") % {"title": title})
                else:
                    messages.success(request, _("“%(title)s” is no longer featured.") % {"title": title})
            elif action == "remove":
                shop_listing_remove(shop=shop, listing_id=target)
                messages.success(request, _("“%(title)s” is no longer in your shop.") % {"title": title})
                return redirect(page)
            else:
                return HttpResponseBadRequest(_("Unknown action."))
        except ShopError as error:
            if error.code == "not_listed":
                raise Http404(error.messages[0]) from error
            messages.error(request, " ".join(error.messages))
        return redirect(f"{page}#listing-{target}")
    listings = selectors.owner_listings(shop)
    terms = selectors.earning_terms_in_force()
    rows = []
    for index, listing in enumerate(listings):
        before = listings[index - 1] if index > 0 else None
        after = listings[index + 1] if index + 1 < len(listings) else None
        rows.append(
            {
                "listing": listing,
                "product": listing.product,
                "earning": _earning(terms, listing.product),
                "can_move_up": before is not None and before.is_featured == listing.is_featured,
                "can_move_down": after is not None and after.is_featured == listing.is_featured,
            }
        )
    return render(request, "shops/my_shop_products.html", {"shop": shop, "rows": rows, "tab": "products"})


def _earning(terms, product):
    if terms is None:
        return None
    return selectors.sharer_earning(terms, price=product.price, commission_rate=product.commission_rate)


def _listing_add(request, shop: Shop, product_id: int) -> None:
    product = selectors.catalogue_search().filter(pk=product_id).first()
    if product is None:
        raise Http404(_("This product is not in the catalogue."))
    try:
        shop_listing_add(shop=shop, product=product)
    except ShopError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(request, _("“%(title)s” is in your shop.") % {"title": product.title})


@member_required
@require_http_methods(["GET", "POST"])
def my_shop_catalogue(request):
    """The platform catalogue to pick from: search by title, filter by category, sort, page; add or remove."""
    shop = _owner_shop_or_redirect(request)
    if shop is None:
        return redirect("shops:my_shop")
    if request.method == "POST":
        action, target = request.POST.get("action"), _post_id(request)
        if target is None:
            return HttpResponseBadRequest(_("Which product?"))
        if action == "add":
            _listing_add(request, shop, target)
        elif action == "remove":
            listing = selectors.owner_listing(shop, target)
            if listing is None:
                raise Http404(_("That product is not in your shop."))
            try:
                shop_listing_remove(shop=shop, listing_id=target)
            except ShopError as error:
                raise Http404(error.messages[0]) from error
            messages.success(request, _("“%(title)s” is no longer in your shop.") % {"title": listing.product.title})
        else:
            return HttpResponseBadRequest(_("Unknown action."))
        # Back to the same search, filter and page the owner was on (the form posts to this very URL).
        return redirect(request.get_full_path())
    search = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    try:
        category_id = int(request.GET.get("category") or 0) or None
    except ValueError:
        category_id = None
    sort = request.GET.get("sort", "")
    if sort not in selectors.CATALOGUE_SORTS:
        sort = ""
    paginator = Paginator(
        selectors.catalogue_search(search=search, category_id=category_id, sort=sort), CATALOGUE_PAGE_SIZE
    )
    page = paginator.get_page(request.GET.get("page"))
    terms = selectors.earning_terms_in_force()  # once per page, not per product
    listed = selectors.listed_product_ids(shop)
    rows = [
        {"product": product, "earning": _earning(terms, product), "listing_id": listed.get(product.pk)}
        for product in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "shops/dashboard_catalogue.html",
        {
            "shop": shop,
            "rows": rows,
            "page": page,
            "query": query.urlencode(),
            "categories": Category.objects.all(),
            "search": search,
            "category_id": category_id,
            "sort": sort,
            "sorts": [
                ("", _("Category")),
                ("earn", _("You earn most")),
                ("price", _("Lowest price")),
                ("new", _("Newest")),
            ],
            "listing_count": len(listed),
            "tab": "catalogue",
        },
    )


# --- The owner's products from external networks (issue #12) ----------------------------


def _percent(rate) -> str:
    """0.2000 → "20%", 0.0450 → "4.5%" (as the commission pages write rates)."""
    return f"{(rate * 100).normalize():f}%"


def _external_listing_add(request, shop: Shop, product_id: int) -> None:
    product = network_selectors.external_product_search().filter(pk=product_id).first()
    if product is None:
        raise Http404(_("This product is not offered any more."))
    try:
        external_listing_add(shop=shop, product=product)
    except NetworkError as error:  # the network did not answer, or has no link service (products from an import)
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request,
            _("“%(title)s” from %(network)s is in your shop.") % {"title": product.title, "network": product.network},
        )


def _external_listing_remove(request, shop: Shop, listing_id: int) -> None:
    listing = selectors.owner_external_listing(shop, listing_id)
    if listing is None:  # not in this member's shop, whoever's it is
        raise Http404(_("That product is not in your shop."))
    try:
        external_listing_remove(shop=shop, listing_id=listing_id)
    except ShopError as error:  # removed meanwhile (another tab)
        raise Http404(error.messages[0]) from error
    messages.success(request, _("“%(title)s” is no longer in your shop.") % {"title": listing.product.title})


@member_required
@require_http_methods(["GET", "POST"])
def my_shop_networks(request):
    """Products of external affiliate networks: the shop's own (remove), and the networks' feeds to pick from
    (search by title, filter by network, sort, page; add). The buy button of each goes through the owner's /l/
    link to the network's tracking link."""
    shop = _owner_shop_or_redirect(request)
    if shop is None:
        return redirect("shops:my_shop")
    if request.method == "POST":
        action, target = request.POST.get("action"), _post_id(request)
        if target is None:
            return HttpResponseBadRequest(_("Which product?"))
        if action == "add":
            _external_listing_add(request, shop, target)
        elif action == "remove":
            _external_listing_remove(request, shop, target)
        else:
            return HttpResponseBadRequest(_("Unknown action."))
        return redirect(request.get_full_path())  # back to the same search, filter and page
    search = request.GET.get("q", "").strip()[:SEARCH_MAX_LENGTH]
    networks = list(network_selectors.enabled_networks())
    try:
        network_id = int(request.GET.get("network") or 0) or None
    except ValueError:
        network_id = None
    sort = request.GET.get("sort", "")
    if sort not in network_selectors.EXTERNAL_SORTS:
        sort = ""
    paginator = Paginator(
        network_selectors.external_product_search(search=search, network_id=network_id, sort=sort),
        CATALOGUE_PAGE_SIZE,
    )
    page = paginator.get_page(request.GET.get("page"))
    terms = selectors.earning_terms_in_force()  # once per page, not per product
    listings = selectors.owner_external_listings(shop)
    listed = {listing.product_id: listing.pk for listing in listings}
    rows = [
        {
            "product": product,
            "earning": None if terms is None else network_selectors.external_earning(terms, product),
            "listing_id": listed.get(product.pk),
            "rate_percent": _percent(product.commission_rate),
            "has_image": network_selectors.image_origin(product.image_url) is not None,
        }
        for product in page.object_list
    ]
    listed_rows = _external_rows(listings)
    query = request.GET.copy()
    query.pop("page", None)
    response = render(
        request,
        "shops/dashboard_networks.html",
        {
            "shop": shop,
            "rows": rows,
            "listed_rows": listed_rows,
            "page": page,
            "query": query.urlencode(),
            "networks": networks,
            "search": search,
            "network_id": network_id,
            "sort": sort,
            "sorts": [
                ("", _("Platform")),
                ("earn", _("You earn most")),
                ("price", _("Lowest price after coupon")),
                ("coupon", _("Biggest coupon")),
                ("new", _("Recently synced")),
            ],
            "tab": "networks",
        },
    )
    _allow_images_from(response, [row["product"] for row in rows] + [row["product"] for row in listed_rows])
    return response
