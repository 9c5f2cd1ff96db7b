"""The owner's "My shop" pages (/dashboard/shop/): details and logo, the listings' order and features, the catalogue
to pick from, and products of external affiliate networks (issue #12)."""

import copy

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import Http404, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from commissions.selectors import earning_terms_in_force, external_earning
from core.csp import allow_images_from
from core.forms import add_service_errors
from core.money import format_rate
from core.ratelimit import rate_limit_exceeded
from members.decorators import member_required
from members.forms import ShopForm, address_check_message
from members.sharing import product_earning
from networks import selectors as network_selectors
from networks.services import NetworkError
from shops import selectors
from shops.models import SHOP_SLUG_MAX_LENGTH, Category, Shop
from shops.services import (
    ShopError,
    external_listing_add,
    external_listing_remove,
    shop_listing_add,
    shop_listing_remove,
    shop_listing_reorder,
    shop_listing_set_featured,
    shop_open,
    shop_update,
)

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
        initial=None if shop else _new_shop_initial(member),
        member=member,
    )
    # The address is checked as it is typed (static/js/shop-address.js); without script the POST checks it.
    form.fields["slug"].widget.attrs.update(
        {
            "data-check-url": reverse("members:my_shop_address_check"),
            "aria-describedby": f"{form['slug'].auto_id}_helptext address-check",
        }
    )
    if shop is None and request.method == "GET":
        form.fields["slug"].widget.attrs["data-check-now"] = ""  # say at once that the suggested address is free
    if request.method == "POST" and form.is_valid():
        fields = form.shop_fields()
        try:
            if shop is None:
                shop_open(owner=member, **fields)
                messages.success(request, _("Your shop is open. Now pick the products it sells."))
                return redirect("members:my_shop_catalogue")
            shop_update(shop=shop, **fields)
            messages.success(request, _("Your shop is saved."))
            return redirect("members:my_shop")
        except ValidationError as error:
            add_service_errors(form, error)
    return render(
        request,
        "members/my_shop.html",
        {"shop": shop, "form": form, "listing_count": shop.listings.count() if shop else 0, "tab": "details"},
        status=400 if form.errors else 200,
    )


def _new_shop_initial(member) -> dict:
    """The open-shop form filled in for a new member, so one tap opens the shop: "<name>'s shop" at an address
    made from their name (Chinese as pinyin), else from their invite code; both editable."""
    name = member.user.get_full_name().strip()
    return {
        "name": _("%(name)s's shop") % {"name": name} if name else _("My shop"),
        "slug": selectors.shop_address_suggestion(name=name, member=member) or "",
    }


@member_required
@require_GET
def my_shop_address_check(request):
    """Can the address typed (?address=) be the member's shop's? JSON {available, message, suggestion} for the
    open-shop page's check as the member types (static/js/shop-address.js). Counted per member:
    settings.RATE_LIMIT_SHOP_ADDRESS_CHECK, then 429 with Retry-After."""
    member = request.member
    retry_after = rate_limit_exceeded("shop_address_check", str(member.pk), settings.RATE_LIMIT_SHOP_ADDRESS_CHECK)
    if retry_after:
        response = JsonResponse(
            {"available": None, "message": _("Too many checks in a row. Wait a moment."), "suggestion": None},
            status=429,
        )
        response["Retry-After"] = str(retry_after)
        return response
    typed = request.GET.get("address", "")[: SHOP_SLUG_MAX_LENGTH + 20]
    check = selectors.shop_address_check(
        typed=typed, name=request.GET.get("name", "")[:100], member=member, shop=selectors.owner_shop(member)
    )
    return JsonResponse(
        {"available": check.is_available, "message": address_check_message(check), "suggestion": check.suggestion}
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
        return redirect("members:my_shop")
    if request.method == "POST":
        action, target = request.POST.get("action"), _post_id(request)
        if target is None:
            return HttpResponseBadRequest(_("Which product?"))
        page = reverse("members:my_shop_products")
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
    terms = earning_terms_in_force()
    rows = []
    for index, listing in enumerate(listings):
        before = listings[index - 1] if index > 0 else None
        after = listings[index + 1] if index + 1 < len(listings) else None
        rows.append(
            {
                "listing": listing,
                "product": listing.product,
                "earning": product_earning(terms, listing.product),
                "can_move_up": before is not None and before.is_featured == listing.is_featured,
                "can_move_down": after is not None and after.is_featured == listing.is_featured,
            }
        )
    return render(request, "members/my_shop_products.html", {"shop": shop, "rows": rows, "tab": "products"})


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
        return redirect("members:my_shop")
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
        # Back to the same search, filter and page the owner was on (the form posts to this very URL), scrolled to
        # the product: adding the next one, or sharing this one, is the next tap.
        return redirect(f"{request.get_full_path()}#product-{listing.product_id if action == 'remove' else target}")
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
    terms = earning_terms_in_force()  # once per page, not per product
    listed = selectors.listed_product_ids(shop)
    rows = [
        {"product": product, "earning": product_earning(terms, product), "listing_id": listed.get(product.pk)}
        for product in page.object_list
    ]
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "members/my_shop_catalogue.html",
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
        return redirect("members:my_shop")
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
    terms = earning_terms_in_force()  # once per page, not per product
    listings = selectors.owner_external_listings(shop)
    listed = {listing.product_id: listing.pk for listing in listings}
    rows = [
        {
            "product": product,
            "earning": None if terms is None else external_earning(terms, product),
            "listing_id": listed.get(product.pk),
            "rate_percent": format_rate(product.commission_rate),
            "has_image": network_selectors.image_origin(product.image_url) is not None,
        }
        for product in page.object_list
    ]
    listed_rows = selectors.external_listing_rows(listings)
    query = request.GET.copy()
    query.pop("page", None)
    response = render(
        request,
        "members/my_shop_networks.html",
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
    allow_images_from(response, network_selectors.image_origins(row["product"] for row in rows + listed_rows))
    return response
