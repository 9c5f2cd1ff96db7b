"""A shop's change of owner needs two people (four eyes, accounts/approvals.py, docs/compliance.md): one staff member
asks on the shop's "Give the shop to another member" page, another approves it in the approval queue, and the shop
changes hands then, through `shop_change_owner`, as the approver."""

from django.db import transaction
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from accounts.approvals import ApprovalAction, approval_action_register, approval_request
from referrals.models import Member
from shops.models import Shop
from shops.services import ShopError, shop_change_owner

SHOP_CHANGE_OWNER = "shops.shop_change_owner"


class _DryRun(Exception):
    """Rolls back a change of owner that was only tried, to check it before asking for approval."""


def shop_change_owner_request(*, shop: Shop, new_owner: Member, actor, reason: str):
    """Ask for `shop` to go to `new_owner`: checked now (a refusal is the form's error, nothing changed), done when a
    second person approves."""
    try:
        with transaction.atomic():
            shop_change_owner(shop=shop, new_owner=new_owner, actor=actor, reason=reason)
            raise _DryRun
    except _DryRun:
        pass
    request, _new = approval_request(
        action=SHOP_CHANGE_OWNER,
        target=shop,
        summary=_("Give %(shop)s to %(member)s") % {"shop": shop, "member": new_owner},
        reason=reason,
        requested_by=actor,
        params={"new_owner": new_owner.pk},
    )
    return request


def _change_owner(request, approver) -> str:
    shop = Shop.objects.get(pk=int(request.target_id))
    new_owner = Member.objects.filter(pk=request.params.get("new_owner")).first()
    if new_owner is None:
        raise ShopError(_("The new owner no longer exists."))
    event = shop_change_owner(shop=shop, new_owner=new_owner, actor=approver, reason=request.reason)
    return _(
        "%(shop)s now belongs to %(member)s. %(links)d share links of the old owner were switched off and "
        "%(external)d external products taken out."
    ) % {
        "shop": shop,
        "member": event.new_owner,
        "links": len(event.detail["share_links_switched_off"]),
        "external": event.detail["external_listings_removed"],
    }


def approval_actions_register() -> None:
    approval_action_register(
        ApprovalAction(
            name=SHOP_CHANGE_OWNER,
            label=gettext_lazy("Give a shop to another member"),
            permission="shops.change_shop_owner",
            execute=_change_owner,
        )
    )
