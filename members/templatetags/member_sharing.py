"""分享赚 on the buyer pages (templates/shops/): a signed-in member sees what they would earn on one unit and a
one-tap way to share. The shop pages are the storefront's (shops), which sits below commissions and members in the
stack, so the figure comes in through these tags, loaded by the templates, not through an import in shops."""

from django import template
from django.urls import reverse

from members.sharing import product_earning, request_earning_terms
from referrals.selectors import member_for_user

register = template.Library()

_MEMBER_ATTRIBUTE = "_sharing_member"
_UNSET = object()


def _active_member(request):
    """The signed-in, active member of this request (read once per request), or None."""
    if request is None or not request.user.is_authenticated:
        return None
    member = getattr(request, _MEMBER_ATTRIBUTE, _UNSET)
    if member is _UNSET:
        member = member_for_user(request.user)
        if member is not None and not member.is_active:
            member = None
        setattr(request, _MEMBER_ATTRIBUTE, member)
    return member


@register.inclusion_tag("members/_share_bar.html", takes_context=True)
def share_bar(context, shop, product=None):
    """The bar above a shop or product page: "Share to earn ¥x" and a Share button, for a signed-in member only.
    On a product: the product's share page (which adds it to the member's own shop first if need be). On a shop:
    the member's own shop's share page, when it is their shop."""
    request = context.get("request")
    member = _active_member(request)
    if member is None:
        return {"show": False}
    if product is not None:
        return {
            "show": True,
            "earning": product_earning(request_earning_terms(request), product),
            "share_url": reverse("members:share_product", args=[product.pk]),
        }
    if shop.owner_id != member.pk:
        return {"show": False}
    return {"show": True, "earning": None, "share_url": reverse("members:share_shop"), "is_shop": True}


@register.simple_tag(takes_context=True)
def member_earning(context, product):
    """What the signed-in member would earn on one unit of `product`, or None (signed out, no plan in force)."""
    request = context.get("request")
    if _active_member(request) is None:
        return None
    return product_earning(request_earning_terms(request), product)
