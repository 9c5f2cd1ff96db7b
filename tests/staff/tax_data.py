"""Paid members in bulk for the tax report tests: users, members (each the root of a tree of its own), identities,
sent withdrawals and their withheld tax, written with bulk_create (10,000 members in seconds, on SQLite and on
PostgreSQL). The tax figures are simple (3 % of the gross): the report adds up what the ledger holds, whatever
rule computed it."""

import itertools
from datetime import date, timedelta
from decimal import Decimal

from django.db.models import Max

from accounts.models import Identity, User
from core.encryption import blind_index, encrypt
from core.id_numbers import gb11643_check_char
from payouts.models import TaxWithholding, Withdrawal
from referrals.models import Member

_serial = itertools.count(1)


def id_number(serial: int) -> str:
    """A valid resident ID number (GB 11643), distinct for each `serial` up to 10,000,000."""
    born = date(1950, 1, 1) + timedelta(days=serial // 1000)
    first17 = f"110105{born:%Y%m%d}{serial % 1000:03d}"
    return first17 + gb11643_check_char(first17)


def paid_members(count: int, *, on: date, gross: str = "100.00", identity: bool = True) -> list[Member]:
    """`count` members, each with a verified identity (unless `identity` is False) and one payout of `gross` on
    `on`, its tax withheld (3 %)."""
    batch = next(_serial)
    users = User.objects.bulk_create(
        [User(email=f"tax{batch}-{n}@example.com", password="!") for n in range(count)], batch_size=2000
    )
    if users and users[0].pk is None:  # SQLite before returning ids: read them back
        users = list(User.objects.filter(email__startswith=f"tax{batch}-").order_by("pk"))
    tree = (Member.objects.aggregate(top=Max("tree_id"))["top"] or 0) + 1
    members = Member.objects.bulk_create(
        [
            Member(
                user=user,
                invite_code=f"T{batch}X{n}",
                join_source=Member.JoinSource.DIRECT,
                tree_id=tree + n,
                lft=1,
                rght=2,
                level=0,
            )
            for n, user in enumerate(users)
        ],
        batch_size=2000,
    )
    if identity:
        name = encrypt("王芳")
        Identity.objects.bulk_create(
            [
                Identity(
                    user=user,
                    id_type=Identity.IdType.RESIDENT_ID,
                    legal_name_encrypted=name,
                    id_number_encrypted=encrypt(id_number(user.pk)),
                    id_number_index=blind_index(f"resident_id:{id_number(user.pk)}"),
                    status=Identity.Status.VERIFIED,
                )
                for user in users
            ],
            batch_size=2000,
        )
    pay(members, on=on, gross=gross)
    return members


def pay(members, *, on: date, gross: str = "100.00", status=TaxWithholding.Status.WITHHELD) -> None:
    """One sent withdrawal of `gross` for each member, paid on `on`, with its withheld tax (3 %)."""
    amount = Decimal(gross)
    tax = (amount * Decimal("0.03")).quantize(Decimal("0.01"))
    batch = next(_serial)
    withdrawal_status = Withdrawal.Status.PAID if status == TaxWithholding.Status.WITHHELD else Withdrawal.Status.FAILED
    withdrawals = Withdrawal.objects.bulk_create(
        [
            Withdrawal(
                member=member,
                amount=amount,
                status=withdrawal_status,
                account={"method": "bank"},
                idempotency_key=f"tax-{batch}-{member.pk}",
            )
            for member in members
        ],
        batch_size=2000,
    )
    if withdrawals and withdrawals[0].pk is None:
        withdrawals = list(Withdrawal.objects.filter(idempotency_key__startswith=f"tax-{batch}-").order_by("pk"))
    TaxWithholding.objects.bulk_create(
        [
            TaxWithholding(
                withdrawal=withdrawal,
                member_id=withdrawal.member_id,
                method="cumulative_2025",
                status=status,
                paid_on=on,
                gross=amount,
                tax=tax,
                net=amount - tax,
                income=amount,
                expenses=amount / 5,
                deduction=Decimal("5000.00"),
                taxable=0,
                rate=Decimal("0.03"),
                quick_deduction=0,
                tax_due=tax,
                withheld_before=0,
            )
            for withdrawal in withdrawals
        ],
        batch_size=2000,
    )
