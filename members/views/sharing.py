"""One-tap sharing (issue #22): the share page of a product, of the member's shop and of their invite (分享赚 ¥x,
the link to copy, its QR code on screen, the poster, staff's materials), and the posters themselves: a PNG to
download and a page to long-press on a phone. A member reaches only their own links: anyone else's is a 404."""

import segno
from django.contrib import messages
from django.http import Http404, HttpResponse, HttpResponseBadRequest
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods

from members.decorators import member_required
from members.links import invite_url, share_link_url
from members.posters import poster_png
from members.sharing import (
    invite_poster_content,
    link_poster_content,
    product_earning,
    request_earning_terms,
)
from shops import selectors
from shops.services import ShopError, share_link_default, shop_listing_add

# The poster's URL carries its content digest, so a browser or CDN may keep it: a new poster has a new URL.
POSTER_BROWSER_SECONDS = 24 * 3600


def _qr_svg(url: str) -> str:
    """The QR code of `url` as inline SVG markup (shown on the page, not only downloaded)."""
    return segno.make(url, error="m").svg_inline(scale=6, border=2, dark="#222", omitsize=True)


def _share_context(link, member) -> dict:
    url = share_link_url(link)
    return {
        "link": link,
        "url": url,
        "qr_svg": _qr_svg(url),
        "poster_url": reverse("members:link_poster", args=[link.pk]),
        "poster_page_url": reverse("members:link_poster_page", args=[link.pk]),
        "poster_version": link_poster_content(link, member).digest()[:12],
    }


def _own_shop(request):
    """The member's shop, or None with a message saying to open one first (products are shared from it)."""
    shop = selectors.owner_shop(request.member)
    if shop is None:
        messages.info(request, _("Open your shop first: you share products from your own shop."))
    return shop


@member_required
@require_http_methods(["GET", "POST"])
def share_product(request, product_id: int):
    """A product's share page. In the member's shop: their link, QR, poster and materials. Not yet: what they
    would earn, and a button that adds it to their shop (POST) and comes back here to share."""
    member = request.member
    shop = _own_shop(request)
    if shop is None:
        return redirect("members:my_shop")
    # Only products for sale: the catalogue's (active) ones, whether in the member's shop or not yet.
    product = selectors.catalogue_search().filter(pk=product_id).first()
    if product is None:
        raise Http404(_("This product is not in the catalogue."))
    listing = selectors.shop_product(shop, product_id)
    if request.method == "POST":
        if request.POST.get("action") != "add":
            return HttpResponseBadRequest(_("Unknown action."))
        try:
            shop_listing_add(shop=shop, product=product)
        except ShopError as error:
            messages.error(request, " ".join(error.messages))
        else:
            messages.success(request, _("“%(title)s” is in your shop. Share it now.") % {"title": product.title})
        return redirect("members:share_product", product_id=product.pk)
    context = {
        "shop": shop,
        "product": product,
        "earning": product_earning(request_earning_terms(request), product),
        "is_listed": listing is not None,
        "materials": list(selectors.product_materials(product)) if listing is not None else [],
    }
    if listing is not None:
        context.update(_share_context(share_link_default(owner=member, product=product), member))
    return render(request, "members/share.html", context)


@member_required
@require_GET
def share_shop(request):
    """The member's whole shop to share: link, QR, poster."""
    member = request.member
    shop = _own_shop(request)
    if shop is None:
        return redirect("members:my_shop")
    context = {"shop": shop, "product": None, "is_listed": True, "materials": []}
    context.update(_share_context(share_link_default(owner=member), member))
    return render(request, "members/share.html", context)


@member_required
@require_GET
def share_invite(request):
    """The member's invite link to share: link, QR, poster."""
    member = request.member
    shop = selectors.owner_shop(member)
    url = invite_url(member)
    return render(
        request,
        "members/share.html",
        {
            "shop": shop,
            "is_invite": True,
            "is_listed": True,
            "url": url,
            "qr_svg": _qr_svg(url),
            "poster_url": reverse("members:invite_poster"),
            "poster_page_url": reverse("members:invite_poster_page"),
            "poster_version": invite_poster_content(member, shop).digest()[:12],
        },
    )


def _own_link_or_404(member, link_id: int):
    link = selectors.member_share_link(member, link_id)
    if link is None or not link.is_active or link.external_product_id is not None:
        raise Http404(_("No such link."))
    return link


def _poster_response(request, content, filename: str) -> HttpResponse:
    response = HttpResponse(poster_png(content), content_type="image/png")
    if request.GET.get("download"):
        response["Content-Disposition"] = f'attachment; filename="{filename}.png"'
    # Private: the poster carries the member's own link. Kept by their browser only, and only for a day.
    response["Cache-Control"] = f"private, max-age={POSTER_BROWSER_SECONDS}"
    return response


@member_required
@require_GET
def link_poster(request, link_id: int):
    """The poster of one of the member's links, as PNG (?download=1: as a file to save)."""
    link = _own_link_or_404(request.member, link_id)
    return _poster_response(request, link_poster_content(link, request.member), f"poster-{link.code}")


@member_required
@require_GET
def invite_poster(request):
    member = request.member
    content = invite_poster_content(member, selectors.owner_shop(member))
    return _poster_response(request, content, f"invite-{member.invite_code}")


def _poster_page(request, *, image_url: str, back_url: str, version: str):
    return render(
        request,
        "members/poster.html",
        {"image_url": image_url, "back_url": back_url, "version": version},
    )


@member_required
@require_GET
def link_poster_page(request, link_id: int):
    """The poster alone on a page, to long-press and save on a phone (WeChat's browser saves images that way)."""
    link = _own_link_or_404(request.member, link_id)
    back = (
        reverse("members:share_product", args=[link.product_id]) if link.product_id else reverse("members:share_shop")
    )
    version = link_poster_content(link, request.member).digest()[:12]
    return _poster_page(
        request, image_url=reverse("members:link_poster", args=[link.pk]), back_url=back, version=version
    )


@member_required
@require_GET
def invite_poster_page(request):
    member = request.member
    version = invite_poster_content(member, selectors.owner_shop(member)).digest()[:12]
    return _poster_page(
        request, image_url=reverse("members:invite_poster"), back_url=reverse("members:share_invite"), version=version
    )
