"""What a member shares: the 分享赚 figure of a product, and the content of their posters (product, shop, invite).

The figure is the commissions app's pure calculation (`commissions.selectors.sharer_earning` on the plan and policy
in force), read once per request; the poster content is everything `members.posters` draws, so its digest changes
whenever the poster would.
"""

from decimal import Decimal

from django.utils.translation import gettext as _

from commissions.selectors import EarningTerms, earning_terms_in_force, sharer_earning
from core.money import format_money
from members.links import invite_url, share_link_url
from members.posters import PosterContent
from referrals.models import Member
from shops.models import Product, ShareLink, Shop

_TERMS_ATTRIBUTE = "_sharing_earning_terms"
_NO_TERMS = object()


def request_earning_terms(request) -> EarningTerms | None:
    """The plan and policy in force, read once per request however many products a page shows."""
    terms = getattr(request, _TERMS_ATTRIBUTE, _NO_TERMS)
    if terms is _NO_TERMS:
        terms = earning_terms_in_force()
        setattr(request, _TERMS_ATTRIBUTE, terms)
    return terms


def product_earning(terms: EarningTerms | None, product: Product) -> Decimal | None:
    """What the sharer earns on one unit of `product` under `terms`; None when no plan or policy is in force."""
    if terms is None:
        return None
    return sharer_earning(terms, price=product.price, commission_rate=product.commission_rate)


def member_display_name(member: Member, shop: Shop | None) -> str:
    """The name a poster shows: the member's own name if they gave one, else their shop's name, else nothing (never
    their email or phone)."""
    return member.user.get_full_name().strip() or (shop.name if shop else "")


def _file_path(field) -> str:
    if not field:
        return ""
    try:
        return field.path
    except NotImplementedError:  # a storage without local files: the poster draws the fallback panel
        return ""


def link_poster_content(link: ShareLink, member: Member) -> PosterContent:
    """The poster of `link` (a product or the whole shop) for its owner `member`."""
    shop = link.shop
    name = member_display_name(member, shop)
    common = {
        "tagline": _("Share to earn"),
        "scan_hint": _("Long-press to scan"),
        "url": share_link_url(link),
    }
    product = link.product
    if product is not None:
        return PosterContent(
            kind="product",
            title=product.title,
            price=format_money(product.price),
            byline=_("Recommended by %(name)s") % {"name": name} if name else shop.name,
            picture=_file_path(product.image),
            picture_version=f"{product.image.name}@{product.updated_at.isoformat()}",
            fallback_mark=product.title,
            **common,
        )
    return PosterContent(
        kind="shop",
        title=shop.name,
        price="",
        byline=_("%(name)s's shop: pick something you like") % {"name": name},
        picture=_file_path(shop.logo),
        picture_version=shop.logo.name,
        fallback_mark=shop.name,
        **common,
    )


def invite_poster_content(member: Member, shop: Shop | None) -> PosterContent:
    """The poster of the member's invite link: join free, open a shop, share and earn."""
    name = member_display_name(member, shop)
    return PosterContent(
        kind="invite",
        title=_("Open your own shop for free, share products and earn"),
        price="",
        byline=_("Invited by %(name)s") % {"name": name} if name else "",
        tagline=_("Share to earn"),
        scan_hint=_("Long-press to scan"),
        url=invite_url(member),
        picture=_file_path(shop.logo) if shop else "",
        picture_version=shop.logo.name if shop else "",
        fallback_mark=name or "+",
    )
