"""One audit log over every audited change, read where each app already writes it.

The apps write their audit rows in the same transaction as the change (TreeEvent, OrderEvent, WithdrawalEvent,
policy and plan versions, payout batches, Django admin's LogEntry for staff edits). This page merges them instead
of copying them into one more table: one truth per change, nothing to keep in step, and no extra write on the hot
paths (joins, payments).

Merging: each source is read newest first with the same filters and at most one page of rows; the rows are merged
in Python and the page is cut. Paging is by cursor ("older than this row"), not by offset, so page 1,000 costs
what page 1 costs. The CSV export streams every matching row the same way, source by source in step.
"""

import csv
import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django import forms
from django.contrib import admin
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Q, QuerySet
from django.db.models.functions import Coalesce
from django.http import StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_lazy as _

from accounts.models import ApprovalRequest, IdentityEvent
from commissions.models import CommissionPlan, CompliancePolicy, RiskEvent
from core.i18n import translation_paths
from core.masking import mask_contacts, mask_email, mask_name, mask_phone
from core.spreadsheets import spreadsheet_safe
from networks.models import ExternalOrder, ExternalOrderEvent
from payouts.models import BalanceAdjustment, InvoiceEvent, PayoutBatch, WithdrawalEvent
from referrals.models import TreeEvent
from shops.models import OrderEvent, ShopEvent
from staff.models import EvidencePackEvent, TaxReportEvent

PAGE_SIZE = 50
ACTOR_MATCHES_MAX = 200  # an actor search matching more people than this is refused as too broad


@dataclass(frozen=True)
class AuditRow:
    at: datetime
    rank: int  # which source: breaks ties between rows of the same instant, for a stable order and cursor
    pk: int
    kind: str
    actor_id: int | None
    actor_label: str  # "system", "buyer", a provider …, when no staff user acted
    object_type: str
    object_id: str
    object_label: str
    amount: Decimal | None
    detail: str
    url: str = ""

    @property
    def key(self) -> tuple:
        return (self.at, self.rank, self.pk)


@dataclass(frozen=True)
class AuditFilters:
    kinds: frozenset[str] = frozenset()  # empty: every kind
    actor_ids: frozenset[int] | None = None  # None: anyone
    system_only: bool = False  # only rows no staff user wrote (tasks, buyers, providers)
    object_type: str = ""
    object_id: str = ""
    since: datetime | None = None
    until: datetime | None = None  # exclusive


class Source:
    """One audited table: how to filter it and how to turn a row into an AuditRow."""

    rank: int
    object_type: str
    time_field = "created_at"
    kinds: tuple[tuple[str, str], ...] = ()

    def wanted_kinds(self, filters: AuditFilters) -> list[str] | None:
        """The kinds of this source to read; None when the filters exclude the whole source."""
        own = [code for code, _label in self.kinds]
        if filters.object_type and filters.object_type != self.object_type:
            return None
        if not filters.kinds:
            return own
        chosen = [code for code in own if code in filters.kinds]
        return chosen or None

    def queryset(self, filters: AuditFilters, kinds: list[str]) -> QuerySet:
        raise NotImplementedError

    def rows(self, filters: AuditFilters, *, before: tuple | None, limit: int | None) -> Iterator[AuditRow]:
        kinds = self.wanted_kinds(filters)
        if kinds is None:
            return iter(())
        qs = self.queryset(filters, kinds)
        field = self.time_field
        if filters.actor_ids is not None:
            qs = qs.filter(**{f"{self.actor_field}__in": filters.actor_ids})
        if filters.system_only:
            qs = qs.filter(**{f"{self.actor_field}__isnull": True})
        if filters.since:
            qs = qs.filter(**{f"{field}__gte": filters.since})
        if filters.until:
            qs = qs.filter(**{f"{field}__lt": filters.until})
        if before is not None:
            at, rank, pk = before
            # Newest first by (time, source rank, pk): keep what sorts strictly below the cursor.
            if self.rank < rank:
                qs = qs.filter(**{f"{field}__lte": at})
            elif self.rank == rank:
                qs = qs.filter(Q(**{f"{field}__lt": at}) | Q(**{field: at, "pk__lt": pk}))
            else:
                qs = qs.filter(**{f"{field}__lt": at})
        qs = qs.order_by(f"-{field}", "-pk")
        if limit is not None:
            return (self.row(obj) for obj in qs[:limit])
        return (self.row(obj) for obj in qs.iterator(chunk_size=2000))

    actor_field = "actor_id"

    def row(self, obj) -> AuditRow:
        raise NotImplementedError

    def make(self, obj, **fields) -> AuditRow:
        """An AuditRow of this source for `obj`; no actor and no label means the system did it."""
        fields.setdefault("amount", None)
        if not fields.get("actor_id"):
            fields.setdefault("actor_label", "system")
        fields.setdefault("actor_label", "")
        return AuditRow(rank=self.rank, pk=obj.pk, object_type=self.object_type, **fields)


def _admin_url(name: str, *args) -> str:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


class TreeSource(Source):
    rank, object_type = 1, "member"
    kinds = tuple((f"tree.{code}", f"{_('Tree')}: {label}") for code, label in TreeEvent.Kind.choices)

    def queryset(self, filters, kinds):
        qs = TreeEvent.objects.filter(kind__in=[kind.removeprefix("tree.") for kind in kinds])
        if filters.object_id:
            qs = qs.filter(member_id=_int_or_none(filters.object_id))
        return qs

    def row(self, event):
        moves = ""
        if event.kind == TreeEvent.Kind.MOVE or event.old_parent_id or event.new_parent_id:
            moves = f"sponsor #{event.old_parent_id or '—'} → #{event.new_parent_id or '—'}"
        changes = _changes(event.before, event.after)
        return self.make(
            event,
            at=event.created_at,
            kind=f"tree.{event.kind}",
            actor_id=event.actor_id,
            actor_label="",
            object_id=str(event.member_id or ""),
            object_label=f"member #{event.member_id}",
            detail=" · ".join(part for part in (moves, changes, event.reason) if part),
            url=_admin_url("admin:referrals_member_change", event.member_id) if event.member_id else "",
        )


class OrderSource(Source):
    rank, object_type = 2, "order"
    kinds = tuple((f"order.{code}", f"{_('Order')}: {label}") for code, label in OrderEvent.Kind.choices)

    def queryset(self, filters, kinds):
        qs = OrderEvent.objects.filter(kind__in=[kind.removeprefix("order.") for kind in kinds]).select_related("order")
        if filters.object_id:
            qs = qs.filter(order__number=filters.object_id)
        return qs.only("pk", "created_at", "kind", "actor_id", "actor_label", "from_status", "to_status", "amount",
                       "note", "order__id", "order__number")  # fmt: skip

    def row(self, event):
        transition = f"{event.from_status or '—'} → {event.to_status}" if event.to_status else ""
        return self.make(
            event,
            at=event.created_at,
            kind=f"order.{event.kind}",
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            object_id=event.order.number,
            object_label=f"order {event.order.number}",
            amount=event.amount,
            detail=" · ".join(part for part in (transition, event.note) if part),
            url=_admin_url("admin:shops_order_change", event.order_id),
        )


class WithdrawalSource(Source):
    rank, object_type = 3, "withdrawal"
    kinds = (
        ("withdrawal.requested", _("Withdrawal: requested")),
        ("withdrawal.approved", _("Withdrawal: approved")),
        ("withdrawal.rejected", _("Withdrawal: rejected")),
        ("withdrawal.cancelled", _("Withdrawal: cancelled")),
        ("withdrawal.processing", _("Withdrawal: sent for payout")),
        ("withdrawal.paid", _("Withdrawal: paid")),
        ("withdrawal.failed", _("Withdrawal: failed")),
    )

    def queryset(self, filters, kinds):
        qs = WithdrawalEvent.objects.filter(to_status__in=[kind.removeprefix("withdrawal.") for kind in kinds])
        if filters.object_id:
            qs = qs.filter(withdrawal_id=_int_or_none(filters.object_id))
        return qs

    def row(self, event):
        return self.make(
            event,
            at=event.created_at,
            kind=f"withdrawal.{event.to_status}",
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            object_id=str(event.withdrawal_id),
            object_label=f"withdrawal {event.withdrawal_id}",
            amount=event.amount,
            detail=_joined(f"{event.from_status or '—'} → {event.to_status}", event.reason),
            url=_admin_url("admin:payouts_withdrawal_change", event.withdrawal_id),
        )


class PolicySource(Source):
    rank, object_type = 4, "policy"
    time_field = "effective_from"
    actor_field = "created_by_id"
    kinds = (("policy.published", _("Compliance policy: new version")),)

    def queryset(self, filters, kinds):
        qs = CompliancePolicy.objects.all()
        if filters.object_id:
            qs = qs.filter(version=_int_or_none(filters.object_id))
        return qs

    def row(self, policy):
        caps = (
            f"max_levels={policy.max_levels} max_total_rate={policy.max_total_rate} "
            f"max_payout_ratio={policy.max_payout_ratio} self_purchase_earns={policy.self_purchase_earns} "
            f"ineligible_share={policy.ineligible_share}"
        )
        if policy.max_payout_ratio_published is not None:
            # Published above the legal ceiling before it existed; lowered to it by commissions migration 0008.
            caps += f" (max_payout_ratio published as {policy.max_payout_ratio_published}, lowered to the ceiling)"
        if policy.preset:
            caps += f" preset={policy.preset}"  # the jurisdiction preset it was published under (issue #25)
        if policy.upline_min_own_sales:
            caps += (
                f" upline_min_own_sales={policy.upline_min_own_sales} "
                f"upline_qualification_days={policy.upline_qualification_days}"
            )
        if policy.binding_days or policy.coupons_enabled:
            # Issue #22's attribution options, shown only when a version turns one on (off is the default).
            caps += (
                f" binding_days={policy.binding_days} binding_mode={policy.binding_mode} "
                f"coupons_enabled={policy.coupons_enabled} coupon_discount_rate={policy.coupon_discount_rate}"
            )
        return self.make(
            policy,
            at=policy.effective_from,
            kind="policy.published",
            actor_id=policy.created_by_id,
            actor_label="" if policy.created_by_id else "system",
            object_id=str(policy.version),
            object_label=str(policy),
            detail=" · ".join(part for part in (caps, policy.note) if part),
            url=_admin_url("admin:commissions_compliancepolicy_change", policy.pk),
        )


class PlanCreatedSource(Source):
    rank, object_type = 5, "plan"
    actor_field = "created_by_id"
    kinds = (("plan.created", _("Commission plan: draft added")),)

    def queryset(self, filters, kinds):
        qs = CommissionPlan.objects.all()
        if filters.object_id:
            qs = qs.filter(version=_int_or_none(filters.object_id))
        return qs

    def row(self, plan):
        return self._row(plan, plan.created_at, "plan.created", plan.created_by_id)

    def _row(self, plan, at, kind, actor_id):
        rates = " / ".join(str(rate) for rate in plan.rates)
        detail = f"rates {rates}"
        if kind == "plan.activated":
            detail += f" · in force from {timezone.localtime(plan.effective_from):%Y-%m-%d %H:%M}"
        return self.make(
            plan,
            at=at,
            kind=kind,
            actor_id=actor_id,
            object_id=str(plan.version),
            object_label=str(plan),
            detail=detail,
            url=_admin_url("admin:commissions_commissionplan_change", plan.pk),
        )


class PlanActivatedSource(PlanCreatedSource):
    rank = 6
    time_field = "activated_at"
    actor_field = "activated_by_id"
    kinds = (("plan.activated", _("Commission plan: activated")),)

    def queryset(self, filters, kinds):
        return super().queryset(filters, kinds).filter(activated_at__isnull=False)

    def row(self, plan):
        return self._row(plan, plan.activated_at, "plan.activated", plan.activated_by_id)


class BatchCreatedSource(Source):
    rank, object_type = 7, "payout_batch"
    actor_field = "created_by_id"
    kinds = (("payout_batch.created", _("Payout batch: created")),)

    def queryset(self, filters, kinds):
        qs = PayoutBatch.objects.all()
        if filters.object_id:
            qs = qs.filter(pk=_int_or_none(filters.object_id))
        return qs

    def row(self, batch):
        return self._row(batch, batch.created_at, "payout_batch.created", batch.created_by_id)

    def _row(self, batch, at, kind, actor_id):
        return self.make(
            batch,
            at=at,
            kind=kind,
            actor_id=actor_id,
            object_id=str(batch.pk),
            object_label=str(batch),
            detail=f"provider {batch.provider}",
            url=_admin_url("admin:payouts_payoutbatch_change", batch.pk),
        )


class BatchDoneSource(BatchCreatedSource):
    rank = 8
    time_field = "completed_at"
    actor_field = "created_by_id"  # a batch closes when its last result is recorded; the row names no closer
    kinds = (("payout_batch.done", _("Payout batch: every payout settled")),)

    def queryset(self, filters, kinds):
        return super().queryset(filters, kinds).filter(completed_at__isnull=False)

    def row(self, batch):
        return self._row(batch, batch.completed_at, "payout_batch.done", None)


class AdminLogSource(Source):
    """Staff edits made in Django admin (catalogue prices and commission rates, shops, users, groups …)."""

    rank, object_type = 9, "admin"
    time_field = "action_time"
    actor_field = "user_id"
    _flags = {ADDITION: "admin.addition", CHANGE: "admin.change", DELETION: "admin.deletion"}
    kinds = (
        ("admin.addition", _("Admin: added")),
        ("admin.change", _("Admin: changed")),
        ("admin.deletion", _("Admin: deleted")),
    )

    def queryset(self, filters, kinds):
        flags = [flag for flag, kind in self._flags.items() if kind in kinds]
        qs = LogEntry.objects.filter(action_flag__in=flags).select_related("content_type")
        if filters.object_id:
            qs = qs.filter(object_id=filters.object_id)
        return qs

    def row(self, entry):
        model = entry.content_type.model if entry.content_type_id else ""
        return self.make(
            entry,
            at=entry.action_time,
            kind=self._flags.get(entry.action_flag, "admin.change"),
            actor_id=entry.user_id,
            actor_label="",
            object_id=entry.object_id or "",
            object_label=f"{model} {entry.object_repr}".strip(),
            detail=entry.get_change_message(),
            url=entry.get_admin_url() if entry.content_type_id and entry.object_id else "",
        )


class ExternalOrderSource(Source):
    """What external affiliate networks reported for an order line: each status or commission change, written with
    the ledger's difference (issue #12). The actor is staff for an assignment or a file import, else the sync."""

    rank, object_type = 10, "external_order"
    time_field = "at"
    kinds = tuple(
        (f"external_order.{code}", f"{_('External order')}: {label}") for code, label in ExternalOrder.Status.choices
    )

    def queryset(self, filters, kinds):
        qs = ExternalOrderEvent.objects.filter(
            to_status__in=[kind.removeprefix("external_order.") for kind in kinds]
        ).select_related("order__network")
        if filters.object_id:
            qs = qs.filter(order__external_order_id=filters.object_id)
        return qs.only("pk", "at", "from_status", "to_status", "from_commission", "to_commission", "source",
                       "actor_id", "note", "order__id", "order__external_order_id", "order__line_id",
                       *translation_paths("order__network__name"))  # fmt: skip

    def row(self, event):
        line = event.order
        transition = f"{event.from_status or '—'} → {event.to_status}"
        commission = ""
        if event.from_commission is not None and event.from_commission != event.to_commission:
            commission = f"commission {event.from_commission} → {event.to_commission}"
        return self.make(
            event,
            at=event.at,
            kind=f"external_order.{event.to_status}",
            actor_id=event.actor_id,
            actor_label="" if event.actor_id else (event.source or "system"),
            object_id=line.external_order_id,
            object_label=f"{line.network.name} {line.external_order_id}/{line.line_id}",
            amount=event.to_commission,
            detail=_joined(transition, commission, event.note),
            url=_admin_url("admin:networks_externalorder_change", line.pk),
        )


class ShopSource(Source):
    """Who a shop belongs to: each owner change, with its reason (shops.services.shop_change_owner)."""

    rank, object_type = 11, "shop"
    kinds = tuple((f"shop.{code}", f"{_('Shop')}: {label}") for code, label in ShopEvent.Kind.choices)

    def queryset(self, filters, kinds):
        qs = ShopEvent.objects.filter(kind__in=[kind.removeprefix("shop.") for kind in kinds]).select_related("shop")
        if filters.object_id:
            qs = qs.filter(shop__slug=filters.object_id.lower())
        return qs

    def row(self, event):
        detail = event.detail or {}
        owners = f"owner {detail.get('old_owner') or '—'} → {detail.get('new_owner') or '—'}"
        if event.kind == ShopEvent.Kind.CLOSING:  # issue #24: the closing notice (and, for a closed account, sales)
            stopped = "sales stopped" if detail.get("sales_stopped") else "selling until then"
            owners = f"closes on {detail.get('closes_at', '—')[:10]}, {stopped}"
        links = detail.get("share_links_switched_off") or []
        switched = f"{len(links)} share links switched off" if links else ""
        external = detail.get("external_listings_removed") or 0
        removed = f"{external} external products taken out" if external else ""
        return self.make(
            event,
            at=event.created_at,
            kind=f"shop.{event.kind}",
            actor_id=event.actor_id,
            actor_label="",
            object_id=event.shop.slug,
            object_label=f"shop {event.shop.slug}",
            detail=_joined(owners, switched, removed, event.reason),
            url=_admin_url("admin:shops_shop_change", event.shop_id),
        )


class IdentitySource(Source):
    """A person's identity (issue #24): capture, verification answers, staff changes and status, and every full
    read of the name and number. The detail holds masked values only."""

    rank, object_type = 12, "identity"
    kinds = tuple((f"identity.{code}", f"{_('Identity')}: {label}") for code, label in IdentityEvent.Kind.choices)

    def queryset(self, filters, kinds):
        qs = IdentityEvent.objects.filter(kind__in=[kind.removeprefix("identity.") for kind in kinds]).select_related(
            "identity"
        )
        if filters.object_id:
            qs = qs.filter(identity__user_id=_int_or_none(filters.object_id))
        return qs

    def row(self, event):
        transition = f"{event.from_status or '—'} → {event.to_status}" if event.to_status else ""
        detail = event.detail or {}
        values = " ".join(f"{key}={detail[key]}" for key in sorted(detail))
        user_id = event.identity.user_id
        return self.make(
            event,
            at=event.created_at,
            kind=f"identity.{event.kind}",
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            object_id=str(user_id),
            object_label=f"identity of user #{user_id}",
            detail=_joined(transition, values, event.reason),
            url=_admin_url("admin:accounts_identity_change", event.identity_id),
        )


class InvoiceSource(Source):
    """A business payee's invoice (docs/tax.md, "Business payees"): submitted by the member, accepted or rejected
    by finance with a reason."""

    rank, object_type = 13, "invoice"
    kinds = (
        ("invoice.submitted", _("Invoice: submitted")),
        ("invoice.accepted", _("Invoice: accepted")),
        ("invoice.rejected", _("Invoice: rejected")),
    )

    def queryset(self, filters, kinds):
        qs = InvoiceEvent.objects.filter(to_status__in=[kind.removeprefix("invoice.") for kind in kinds])
        if filters.object_id:
            qs = qs.filter(invoice__withdrawal_id=_int_or_none(filters.object_id))
        return qs.select_related("invoice")

    def row(self, event):
        invoice = event.invoice
        return self.make(
            event,
            at=event.created_at,
            kind=f"invoice.{event.to_status}",
            actor_id=event.actor_id,
            actor_label=event.actor_label,
            object_id=str(invoice.withdrawal_id),
            object_label=f"invoice {invoice.display_number} (withdrawal {invoice.withdrawal_id})",
            amount=invoice.amount,
            detail=_joined(f"{event.from_status or '—'} → {event.to_status}", event.reason),
            url=_admin_url("admin:payouts_invoice_change", invoice.pk),
        )


class ApprovalAskedSource(Source):
    """Four eyes (accounts/approvals.py): a change asked for by one staff member, and (below) its decision by
    another, so both names are in the log."""

    rank, object_type = 20, "approval"
    time_field = "requested_at"
    actor_field = "requested_by_id"
    kinds = (("approval.asked", _("Four eyes: change asked for")),)

    def queryset(self, filters, kinds):
        qs = ApprovalRequest.objects.all()
        if filters.object_id:
            qs = qs.filter(pk=_int_or_none(filters.object_id))
        return qs

    def row(self, approval):
        return self._row(approval, approval.requested_at, "approval.asked", approval.requested_by_id, approval.reason)

    def _row(self, approval, at, kind, actor_id, text):
        return self.make(
            approval,
            at=at,
            kind=kind,
            actor_id=actor_id,
            object_id=str(approval.pk),
            object_label=f"{approval.target_type} {approval.target_label}",
            amount=approval.amount,
            detail=_joined(approval.summary, text),
            url=_admin_url("admin:accounts_approvalrequest_change", approval.pk),
        )


class ApprovalDecidedSource(ApprovalAskedSource):
    rank = 21
    time_field = "decided_at"
    actor_field = "decided_by_id"
    kinds = (("approval.decided", _("Four eyes: change approved or refused")),)

    def queryset(self, filters, kinds):
        return super().queryset(filters, kinds).filter(decided_at__isnull=False)

    def row(self, approval):
        decision = _joined(approval.get_status_display(), approval.decision_note, approval.outcome)
        return self._row(approval, approval.decided_at, "approval.decided", approval.decided_by_id, decision)


class GeneratedFileSource(Source):
    """A file the back office generates (staff.file_jobs): asked for, generated (its checksums), failed, and every
    download (who)."""

    event_model: type
    parent: str  # the event's foreign key to the file
    change_url: str

    def queryset(self, filters, kinds):
        prefix = f"{self.object_type}."
        qs = self.event_model.objects.filter(kind__in=[kind.removeprefix(prefix) for kind in kinds])
        if filters.object_id:
            qs = qs.filter(**{f"{self.parent}_id": _int_or_none(filters.object_id)})
        return qs.select_related(self.parent)

    def row(self, event):
        detail = event.detail or {}
        values = " ".join(f"{key}={detail[key]}" for key in sorted(detail))
        parent_id = getattr(event, f"{self.parent}_id")
        return self.make(
            event,
            at=event.created_at,
            kind=f"{self.object_type}.{event.kind}",
            actor_id=event.actor_id,
            actor_label="",
            object_id=str(parent_id),
            object_label=str(getattr(event, self.parent)),
            detail=values,
            url=_admin_url(self.change_url, parent_id),
        )


class TaxReportSource(GeneratedFileSource):
    """The tax reports (staff.tax_reports): asked for, generated (the figures and the files' SHA-256), failed, and
    every download of a file holding full ID numbers (who, which file)."""

    rank, object_type = 14, "tax_report"
    event_model, parent, change_url = TaxReportEvent, "report", "admin:staff_taxreport_change"
    kinds = tuple((f"tax_report.{code}", f"{_('Tax report')}: {label}") for code, label in TaxReportEvent.Kind.choices)


class EvidencePackSource(GeneratedFileSource):
    """The evidence packs (staff.evidence): asked for, generated (the manifest's SHA-256), failed, and every
    download (who)."""

    rank, object_type = 30, "evidence_pack"
    event_model, parent, change_url = EvidencePackEvent, "pack", "admin:staff_evidencepack_change"
    kinds = tuple(
        (f"evidence_pack.{code}", f"{_('Evidence pack')}: {label}") for code, label in EvidencePackEvent.Kind.choices
    )


class RiskSource(Source):
    """Risk review decisions and rule changes (issue #25): release, reverse, ban, each with its reason."""

    rank, object_type = 15, "risk_flag"
    kinds = tuple((f"risk.{code}", f"{_('Risk')}: {label}") for code, label in RiskEvent.Kind.choices)

    def queryset(self, filters, kinds):
        qs = RiskEvent.objects.filter(kind__in=[kind.removeprefix("risk.") for kind in kinds]).select_related("rule")
        if filters.object_id:
            qs = qs.filter(flag_id=_int_or_none(filters.object_id))
        return qs

    def row(self, event):
        detail = event.detail or {}
        if event.rule_id:
            changed = " ".join(
                f"{name} {detail.get('before', {}).get(name)} → {value}"
                for name, value in sorted(detail.get("after", {}).items())
                if detail.get("before", {}).get(name) != value
            )
            label, what = f"risk rule {event.rule.code}", changed
        elif event.flag_id:
            label = f"risk flag {event.flag_id}"
            what = f"{detail.get('rule', '')} on {detail.get('subject', '')} {detail.get('subject_id', '')}".strip()
        else:
            label, what = f"member #{event.member_id}", ""
        return self.make(
            event,
            at=event.created_at,
            kind=f"risk.{event.kind}",
            actor_id=event.actor_id,
            actor_label="",
            object_id=str(event.flag_id or ""),
            object_label=label,
            amount=event.amount,
            detail=_joined(what, event.reason),
            url=_admin_url("admin:commissions_riskflag_change", event.flag_id) if event.flag_id else "",
        )


class AdjustmentSource(Source):
    """Staff adjustments of a member's balance (payouts/adjustments.py): the one who applied it is the actor (the
    second approver when there was one), and the detail names the one who entered it, so both names are here even
    without the approval request's own rows."""

    rank, object_type = 23, "balance_adjustment"
    actor_field = "applied_by_id"
    kinds = (("adjustment.applied", _("Balance adjustment: applied")),)

    def queryset(self, filters, kinds):
        qs = BalanceAdjustment.objects.select_related("requested_by", "approved_by").annotate(
            applied_by_id=Coalesce("approved_by_id", "requested_by_id")
        )
        if filters.object_id:
            qs = qs.filter(member_id=_int_or_none(filters.object_id))
        return qs

    def row(self, adjustment):
        entered = f"entered by {adjustment.requested_by}"
        approved = f"approved by {adjustment.approved_by}" if adjustment.approved_by_id else ""
        return self.make(
            adjustment,
            at=adjustment.created_at,
            kind="adjustment.applied",
            actor_id=adjustment.applied_by_id,
            object_id=str(adjustment.member_id),
            object_label=f"member #{adjustment.member_id}",
            amount=adjustment.amount,
            detail=_joined(entered, approved, adjustment.member_note, adjustment.internal_note),
            url=_admin_url("admin:payouts_balanceadjustment_change", adjustment.pk),
        )


SOURCES: tuple[Source, ...] = (
    TreeSource(),
    OrderSource(),
    WithdrawalSource(),
    PolicySource(),
    PlanCreatedSource(),
    PlanActivatedSource(),
    BatchCreatedSource(),
    BatchDoneSource(),
    AdminLogSource(),
    ExternalOrderSource(),
    ShopSource(),
    IdentitySource(),
    InvoiceSource(),
    ApprovalAskedSource(),
    ApprovalDecidedSource(),
    TaxReportSource(),
    RiskSource(),
    EvidencePackSource(),
    AdjustmentSource(),
)
KIND_CHOICES = tuple(kind for source in SOURCES for kind in source.kinds)
OBJECT_TYPE_CHOICES = (
    ("", _("any")),
    ("member", _("member (id)")),
    ("order", _("order (number)")),
    ("withdrawal", _("withdrawal (id)")),
    ("policy", _("compliance policy (version)")),
    ("plan", _("commission plan (version)")),
    ("payout_batch", _("payout batch (id)")),
    ("admin", _("admin edit (object id)")),
    ("external_order", _("external order (the network's order id)")),
    ("shop", _("shop (its address)")),
    ("identity", _("identity (the user's id)")),
    ("approval", _("approval request (id)")),
    ("invoice", _("invoice (the withdrawal's id)")),
    ("tax_report", _("tax report (id)")),
    ("risk_flag", _("risk flag (id)")),
    ("evidence_pack", _("evidence pack (id)")),
    ("balance_adjustment", _("balance adjustment (the member's id)")),
)
KIND_LABELS = dict(KIND_CHOICES)


def _int_or_none(value: str) -> int | None:
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None


def _joined(*parts: str) -> str:
    return " · ".join(part for part in parts if part)


def _changes(before: dict, after: dict) -> str:
    keys = sorted(set(before or {}) | set(after or {}))
    return ", ".join(f"{key}: {(before or {}).get(key, '—')} → {(after or {}).get(key, '—')}" for key in keys)


def audit_rows(filters: AuditFilters, *, before: tuple | None = None, limit: int | None = PAGE_SIZE) -> list[AuditRow]:
    """The newest `limit` rows matching `filters` that sort below the cursor `before`, newest first."""
    streams = [source.rows(filters, before=before, limit=limit) for source in SOURCES]
    merged = heapq.merge(*streams, key=lambda row: row.key, reverse=True)
    if limit is None:
        return list(merged)
    return [row for _index, row in zip(range(limit), merged, strict=False)]


def audit_rows_iter(filters: AuditFilters) -> Iterator[AuditRow]:
    """Every matching row, newest first, streamed (for the CSV export)."""
    streams = [source.rows(filters, before=None, limit=None) for source in SOURCES]
    return heapq.merge(*streams, key=lambda row: row.key, reverse=True)


# --- The page ---------------------------------------------------------------------------------------------------


class AuditFilterForm(forms.Form):
    kind = forms.MultipleChoiceField(label=_("Kind"), choices=KIND_CHOICES, required=False)
    actor = forms.CharField(
        label=_("Actor"), max_length=254, required=False, help_text=_("An email (or part of one), or “system”.")
    )
    object_type = forms.ChoiceField(label=_("Object"), choices=OBJECT_TYPE_CHOICES, required=False)
    object_id = forms.CharField(label=_("Object id or number"), max_length=64, required=False)
    date_from = forms.DateField(label=_("From"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("To (inclusive)"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        date_from, date_to = cleaned.get("date_from"), cleaned.get("date_to")
        if date_from and date_to and date_from > date_to:
            self.add_error("date_to", _("The end date is before the start date."))
        if cleaned.get("object_id") and not cleaned.get("object_type"):
            self.add_error("object_type", _("Choose what kind of object the id or number belongs to."))
        return cleaned

    def clean_actor(self):
        actor = self.cleaned_data["actor"].strip()
        if not actor or actor.lower() == "system":
            return actor
        users = list(get_user_model().objects.filter(email__icontains=actor).values_list("pk", flat=True)[
            : ACTOR_MATCHES_MAX + 1
        ])  # fmt: skip
        if not users:
            raise forms.ValidationError(_("Nobody's email contains “%(actor)s”.") % {"actor": actor})
        if len(users) > ACTOR_MATCHES_MAX:
            message = _("More than %(max)d people match: be more precise.")
            raise forms.ValidationError(message % {"max": ACTOR_MATCHES_MAX})
        self.actor_ids = frozenset(users)
        return actor

    def filters(self) -> AuditFilters:
        data = self.cleaned_data
        tz = timezone.get_current_timezone()
        since = until = None
        if data.get("date_from"):
            since = datetime.combine(data["date_from"], time.min, tzinfo=tz)
        if data.get("date_to"):
            until = datetime.combine(data["date_to"] + timedelta(days=1), time.min, tzinfo=tz)
        actor = data.get("actor") or ""
        return AuditFilters(
            kinds=frozenset(data.get("kind") or ()),
            actor_ids=getattr(self, "actor_ids", None) if actor else None,
            system_only=actor.lower() == "system",
            object_type=data.get("object_type") or "",
            object_id=(data.get("object_id") or "").strip(),
            since=since,
            until=until,
        )


def _cursor_encode(row: AuditRow) -> str:
    return f"{row.at.isoformat()}|{row.rank}|{row.pk}"


def _cursor_decode(value: str) -> tuple | None:
    parts = (value or "").split("|")
    if len(parts) != 3:
        return None
    at = parse_datetime(parts[0]) if parts[0] else None
    rank, pk = _int_or_none(parts[1]), _int_or_none(parts[2])
    if at is None or rank is None or pk is None or timezone.is_naive(at):
        return None
    return (at, rank, pk)


def people_names(ids: Iterable[int | None], *, masked: bool = False) -> dict[int, str]:
    """{user id: how the log names them}, one query. `masked` (a file that leaves the back office): staff are named,
    as their accountability needs, everyone else (a member requesting a withdrawal) is masked (core.masking)."""
    ids = {pk for pk in ids if pk}
    if not ids:
        return {}
    # Someone who signed up by phone or WeChat has no email (issue #23): their phone, else their name.
    people = get_user_model().objects.filter(pk__in=ids).values_list("pk", "email", "phone", "first_name", "is_staff")
    names = {}
    for pk, email, phone, first_name, is_staff in people:
        if masked and not is_staff:
            names[pk] = f"user #{pk} ({mask_email(email) or mask_phone(phone) or mask_name(first_name)})"
        else:
            names[pk] = email or phone or first_name or f"#{pk}"
    return names


def _actor_names(rows: Iterable[AuditRow], *, masked: bool = False) -> dict[int, str]:
    return people_names((row.actor_id for row in rows), masked=masked)


@admin.site.admin_view
def audit_log(request):
    if not request.user.has_perm("staff.view_audit_log"):
        raise PermissionDenied
    form = AuditFilterForm(request.GET or None)
    rows, next_cursor, cursor_error = [], "", False
    is_valid = form.is_valid() if request.GET else True
    filters = form.filters() if request.GET and is_valid else AuditFilters()
    if is_valid and request.GET.get("format") == "csv":
        return _csv_response(filters)
    if is_valid:
        before = None
        if request.GET.get("before"):
            before = _cursor_decode(request.GET["before"])
            cursor_error = before is None
        if not cursor_error:
            rows = audit_rows(filters, before=before, limit=PAGE_SIZE + 1)
            if len(rows) > PAGE_SIZE:
                rows = rows[:PAGE_SIZE]
                next_cursor = _cursor_encode(rows[-1])
    names = _actor_names(rows)
    query = request.GET.copy()
    query.pop("before", None)
    query.pop("format", None)
    context = {
        **admin.site.each_context(request),
        "title": _("Audit log"),
        "form": form,
        "rows": [
            {
                "row": row,
                "kind_label": KIND_LABELS.get(row.kind, row.kind),
                "actor": names.get(row.actor_id, f"#{row.actor_id}") if row.actor_id else (row.actor_label or "system"),
            }
            for row in rows
        ],
        "next_query": _with(query, before=next_cursor) if next_cursor else "",
        "first_query": query.urlencode(),
        "csv_query": _with(query, format="csv"),
        "is_later_page": bool(request.GET.get("before")),
        "cursor_error": cursor_error,
        "page_size": PAGE_SIZE,
    }
    return TemplateResponse(request, "admin/staff/audit_log.html", context)


def _with(query, **values) -> str:
    query = query.copy()
    for key, value in values.items():
        query[key] = value
    return query.urlencode()


class _Echo:
    def write(self, value):
        return value


# The header row in the staff member's language (issue #23), read when the view runs: the body streams after it
# returns. The values of "kind" and "object type" are the log's own codes, kept as they are so a filter or a
# script reading the file works in any language.
CSV_HEADER = (
    _("time"),
    _("kind"),
    _("actor"),
    _("object type"),
    _("object id"),
    _("object"),
    _("amount"),
    _("detail"),
)
CSV_CHUNK = 500


def audit_csv_rows(filters: AuditFilters, *, masked: bool = False) -> Iterator[tuple]:
    """Every matching row as the CSV export writes it (CSV_HEADER), newest first, streamed: the sources are read in
    chunks (`iterator`) and the actors named one query per CSV_CHUNK rows, so memory stays flat whatever the period
    holds. `masked`: members named by a mask, and emails and phone numbers in the texts masked (the evidence pack)."""
    text = mask_contacts if masked else str
    stream = audit_rows_iter(filters)
    while True:
        chunk = [row for _index, row in zip(range(CSV_CHUNK), stream, strict=False)]
        if not chunk:
            return
        names = _actor_names(chunk, masked=masked)
        for row in chunk:
            actor = names.get(row.actor_id, f"#{row.actor_id}") if row.actor_id else (row.actor_label or "system")
            yield (
                row.at.isoformat(),
                row.kind,
                spreadsheet_safe(actor),
                row.object_type,
                spreadsheet_safe(row.object_id),
                spreadsheet_safe(text(row.object_label)),
                "" if row.amount is None else str(row.amount),
                spreadsheet_safe(text(row.detail)),
            )


def _csv_lines(filters: AuditFilters, header: list[str]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for values in audit_csv_rows(filters):
        yield writer.writerow(values)


def _csv_response(filters: AuditFilters) -> StreamingHttpResponse:
    stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(
        _csv_lines(filters, [str(name) for name in CSV_HEADER]), content_type="text/csv; charset=utf-8"
    )
    response["Content-Disposition"] = f'attachment; filename="audit-log-{stamp}.csv"'
    return response
