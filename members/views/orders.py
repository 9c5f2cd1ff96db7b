"""The owner's orders pages (/dashboard/orders/): the orders of their shop and the orders they shared, with what
they earn on each; the buyer masked (members.selectors.OwnerOrderRow), never the address.

Another member's order is a 404, exactly like one that does not exist (the selectors filter on the member).
"""

from django.core.paginator import Paginator
from django.http import Http404
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET

from commissions.selectors import member_order_entries
from members.decorators import member_required
from members.forms import OrderFilterForm
from members.selectors import member_order_rows
from shops.selectors import member_order, member_orders, order_timeline

ORDERS_PER_PAGE = 20


@member_required  # closed to a suspended member, as the member API's orders are (docs/security.md)
@require_GET
def orders(request):
    form = OrderFilterForm(request.GET)
    page = Paginator(member_orders(request.member, **form.filters()), ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    return render(
        request,
        "members/orders.html",
        {"form": form, "page": page, "rows": member_order_rows(request.member, page.object_list)},
    )


@member_required
@require_GET
def order_detail(request, number: str):
    order = member_order(request.member, number)
    if order is None:
        raise Http404(_("No such order."))
    (row,) = member_order_rows(request.member, [order])
    return render(
        request,
        "members/order_detail.html",
        {
            "row": row,
            "order": order,
            "timeline": order_timeline(order),
            "entries": member_order_entries(request.member, order.pk),
        },
    )
