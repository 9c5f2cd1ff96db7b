"""A member's data as a ZIP ("Download my data", issue #24; 个人信息保护法 art. 45: the right to a copy).

Every table is written twice, as JSON (for programs) and CSV (for a spreadsheet, every cell through
`core.spreadsheets.spreadsheet_safe`; both by core/exports.py), beside a README.txt that says what each file is.
Money is written as the Decimal's string ("12.30"), never a float. Only the member's own data: the orders attributed
to them without the buyer's name or contact, the identity and the payout account masked.

Built while the request waits, into a temporary file that stays in memory up to SPOOL_MAX_BYTES and then goes to
disk, so the memory a download takes is bounded whatever the member's history; the rows are read in chunks
(`iterator`). Why not a Celery task and a stored file: see docs/privacy.md, "Your data: download it".
"""

import json
import tempfile
import zipfile
from datetime import datetime

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.identity import identity_for_user, identity_masked
from accounts.services import user_login_methods
from commissions.selectors import member_commission_entries
from core.exports import SPOOL_MAX_BYTES, Table, zip_write_table
from core.i18n import localized
from core.masking import mask_name
from members.notifications.models import NotificationSettings
from payouts.selectors import member_adjustments, member_payout_account, member_withdrawals
from referrals.models import Member
from shops.models import OrderLine
from shops.selectors import member_orders, member_share_links, owner_listings, owner_shop

CHUNK = 2_000  # rows read at a time


def _profile(member: Member) -> list[dict]:
    user = member.user
    methods = user_login_methods(user)
    notification_settings = NotificationSettings.objects.filter(member=member).first()
    identity = identity_for_user(user)
    masked = identity_masked(identity) if identity is not None else None
    return [
        {
            "first_name": user.first_name,
            "last_name": user.last_name,
            "email": user.email,
            "phone": user.phone,
            "date_joined": user.date_joined,
            "last_login": user.last_login,
            "invite_code": member.invite_code,
            "joined_programme": member.joined_at,
            "joined_through": member.join_source,
            "status": member.status,
            "named_on_leaderboard": member.is_named_on_leaderboard,
            "login_email_and_password": methods["password"],
            "login_phone": methods["phone"],
            "login_wechat_bindings": methods["wechat"],
            "notification_language": notification_settings.language if notification_settings else "",
            "notification_channels": json.dumps(notification_settings.channels if notification_settings else {}),
            "identity_type": masked.id_type if masked else None,
            "identity_name_masked": masked.name if masked else None,
            "identity_number_masked": masked.number if masked else None,
            "identity_status": masked.status if masked else None,
        }
    ]


def _shop(member: Member) -> tuple[list[dict], list[dict]]:
    shop = owner_shop(member)
    if shop is None:
        return [], []
    shop_row = {
        "name": shop.name,
        "address": shop.slug,
        "description": shop.description,
        "open_for_orders": shop.is_open,
        "closes_at": shop.closes_at,
        "created_at": shop.created_at,
    }
    listings = [
        {
            "product_id": listing.product_id,
            "product": listing.product.title,
            "price": listing.product.price,
            "position": listing.position,
            "featured": listing.is_featured,
            "added_at": listing.created_at,
        }
        for listing in owner_listings(shop)
    ]
    return [shop_row], listings


def _links(member: Member):
    for link in member_share_links(member).iterator(chunk_size=CHUNK):
        yield {
            "code": link.code,
            "shop": link.shop.slug,
            "product": link.product.title if link.product_id else None,
            "campaign": link.campaign,
            "active": link.is_active,
            "created_at": link.created_at,
            "clicks": link.clicks,
            "unique_visitors": link.unique_visitors,
            "orders": link.order_count,
            "sales": link.sales,
        }


def _chunks(rows, size: int = CHUNK):
    chunk = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _orders(member: Member):
    # member_orders reads no buyer field at all (MEMBER_ORDER_FIELDS): the buyer's name, phone, email and address
    # are the buyer's data, not the member's. Rows as values (no model instances: a fifth of the time), their lines
    # one query per chunk.
    orders = (
        member_orders(member)
        .prefetch_related(None)
        .values("pk", "number", "created_at", "paid_at", "shop__slug", "source", "total", "refunded_total", "status")
    )
    for chunk in _chunks(orders.iterator(chunk_size=CHUNK)):
        products: dict[int, list[str]] = {}
        lines = (
            OrderLine.objects.filter(order_id__in=[order["pk"] for order in chunk])
            .annotate(shown_title=localized("product__title"))
            .order_by("pk")
            .values_list("order_id", "shown_title", "title", "quantity")
        )
        for order_id, shown_title, title, quantity in lines:
            products.setdefault(order_id, []).append(f"{shown_title or title} × {quantity}")
        for order in chunk:
            yield {
                "number": order["number"],
                "placed_at": order["created_at"],
                "paid_at": order["paid_at"],
                "shop": order["shop__slug"],
                "through": order["source"],
                "products": "; ".join(products.get(order["pk"], [])),
                "amount": order["total"],
                "refunded": order["refunded_total"],
                "status": order["status"],
            }


def _commissions(member: Member):
    entries = member_commission_entries(member).values(
        "pk", "created_at", "order__number", "line_title", "order_line__title", "level", "kind", "amount", "status"
    )
    for entry in entries.iterator(chunk_size=CHUNK):
        yield {
            "id": entry["pk"],
            "created_at": entry["created_at"],
            "order": entry["order__number"],
            "product": entry["line_title"] or entry["order_line__title"],
            "level": entry["level"],
            "kind": entry["kind"],
            "amount": entry["amount"],
            "status": entry["status"],
        }


def _withdrawals(member: Member):
    for withdrawal in member_withdrawals(member).iterator(chunk_size=CHUNK):
        yield {
            "id": withdrawal.pk,
            "requested_at": withdrawal.requested_at,
            "status": withdrawal.status,
            "gross": withdrawal.amount,
            "tax_withheld": withdrawal.tax_withheld,
            "net": withdrawal.net_amount,
            "paid_at": withdrawal.paid_at,
        }


def _adjustments(member: Member):
    """Staff adjustments of the balance, with the note written for the member (never the internal note)."""
    for adjustment in member_adjustments(member).order_by("created_at", "pk").iterator(chunk_size=CHUNK):
        yield {"id": adjustment.pk, "created_at": adjustment.created_at, "amount": adjustment.amount,
               "note": adjustment.member_note}  # fmt: skip


def _payout_account(member: Member) -> list[dict]:
    account = member_payout_account(member)
    if account is None:
        return []
    return [
        {
            "method": account.method,
            "holder_name_masked": mask_name(account.holder_name),
            "account_masked": account.masked_identifier,
            "bank": account.bank_name,
            "updated_at": account.updated_at,
        }
    ]


def member_export_tables(member: Member) -> list[Table]:
    shop, listings = _shop(member)
    profile = _profile(member)
    return [
        Table("profile", _("your account, ways to log in, notification choices, identity (masked)"),
              list(profile[0]), profile),
        Table("shop", _("your shop"), ["name", "address", "description", "open_for_orders", "closes_at", "created_at"],
              shop),
        Table("listings", _("the products listed in your shop"),
              ["product_id", "product", "price", "position", "featured", "added_at"], listings),
        Table("share_links", _("your share links, with their clicks, unique visitors, orders and sales"),
              ["code", "shop", "product", "campaign", "active", "created_at", "clicks", "unique_visitors", "orders",
               "sales"], _links(member)),
        Table("orders", _("orders of your shop and through your links (without the buyers' details)"),
              ["number", "placed_at", "paid_at", "shop", "through", "products", "amount", "refunded", "status"],
              _orders(member)),
        Table("commissions", _("your commission ledger: every entry, its level, kind, amount and status"),
              ["id", "created_at", "order", "product", "level", "kind", "amount", "status"], _commissions(member)),
        Table("withdrawals", _("your withdrawals: gross, tax withheld and net paid"),
              ["id", "requested_at", "status", "gross", "tax_withheld", "net", "paid_at"], _withdrawals(member)),
        Table("balance_adjustments", _("changes of your balance made by our staff, with their note to you"),
              ["id", "created_at", "amount", "note"], _adjustments(member)),
        Table("payout_account", _("where your withdrawals are paid (masked)"),
              ["method", "holder_name_masked", "account_masked", "bank", "updated_at"], _payout_account(member)),
    ]  # fmt: skip


def _readme(member: Member, tables: list[Table], now: datetime) -> str:
    lines = [
        _("Your data, as of %(time)s (invite code %(code)s).")
        % {"time": timezone.localtime(now).strftime("%Y-%m-%d %H:%M %Z"), "code": member.invite_code},
        "",
        _("Each table is here twice: as JSON (for programs) and as CSV (for a spreadsheet)."),
        _("Amounts of money are written as exact decimal numbers in %(currency)s, e.g. 12.30.") % {"currency": "CNY"},
        _("Your ID number and payout account are masked: the full values are never sent out, not even to you."),
        "",
    ]
    lines += [f"{table.name}.json, {table.name}.csv: {table.description}" for table in tables]
    return "\n".join(lines) + "\n"


def member_export_write(member: Member, now: datetime | None = None):
    """The ZIP of `member`'s data in a temporary file, rewound (the caller streams it and closes it)."""
    now = now or timezone.now()
    tables = member_export_tables(member)
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_MAX_BYTES)  # noqa: SIM115 - the response closes it
    with zipfile.ZipFile(spool, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("README.txt", _readme(member, tables, now))
        for table in tables:
            zip_write_table(archive, table)
    spool.seek(0)
    return spool
