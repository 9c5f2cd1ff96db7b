"""The evidence pack for a regulator or an auditor (issue #25; docs/compliance.md, "The evidence pack"): one ZIP per
period with what shows that the programme kept to its rules, and a manifest of the SHA-256 of every file in it.

| file | what it is |
| --- | --- |
| README.txt | what each file is, the period, when and by whom the pack was generated, how to check the manifest |
| summary.json | the period, the generation, each file's rows, the compliance checks' results |
| compliance_report.csv, .xlsx | the compliance report of the period, the same figures as the staff page |
| policy_versions, plan_versions (.json, .csv) | every version, all its fields, who made, asked for, approved it |
| rule_approvals (.json, .csv) | every four-eyes request on a plan or a policy, whatever came of it |
| audit_log.csv | the audit log of the period (every source), as the staff export writes it |
| tree_summary, tree_depths, tree_largest_downlines, tree_joins_by_month (.json, .csv) | the tree's size and depth |
| fraud_actions (.json, .csv) | the risk review's decisions of the period: release, reverse, ban, rule changes |
| MANIFEST.sha256 | `sha256sum` format; its own SHA-256 is shown in the admin, to hand over separately |

Members are masked (core.masking) everywhere the pack names one; staff are named (who did what is the point). Free
text staff typed (a reason, a note) is quoted as written, with emails and phone numbers in it masked.

Built by a Celery task (`staff.tasks.evidence_pack_generate_task`) through staff/file_jobs.py, like the tax reports:
a lease on the row (safe to run twice or at once), the ZIP streamed into encrypted pieces as it is written (the
audit log of a long period is never in memory whole: see `staff.audit.audit_csv_rows`), the failure recorded with
its reason. The download is for `staff.download_evidencepack` and writes an event the audit log shows.
"""

import codecs
import csv
import json
import logging
from collections.abc import Iterable, Iterator
from datetime import date, datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import Count, Model, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import ApprovalRequest
from commissions.approvals import PLAN_ACTIVATE, POLICY_PUBLISH
from commissions.models import CommissionPlan, CompliancePolicy, RiskEvent, RiskFlag
from core.exports import ChecksumZip, Table, export_value, zip_write_table
from core.masking import mask_contacts, mask_email, mask_name, mask_phone
from core.spreadsheets import XlsxStreamWriter
from core.task_helpers import task_send
from payouts.approvals import MEMBER_BAN
from referrals.selectors import tree_depth_counts, tree_joins_by_month, tree_largest_downlines, tree_pending_count
from staff.audit import CSV_HEADER, AuditFilters, audit_csv_rows, people_names
from staff.compliance import compliance_report_csv_write, compliance_report_sections
from staff.file_jobs import FileJob, FileJobBusy, PieceWriter, file_job_request, file_job_run, pieces_stream
from staff.models import EvidencePack, EvidencePackEvent, EvidencePackPiece
from staff.reports import compliance_report, period_bounds

logger = logging.getLogger(__name__)

JOB = FileJob(model=EvidencePack, piece_model=EvidencePackPiece, event_model=EvidencePackEvent, parent="pack")
REQUEST_PERMISSION = "staff.add_evidencepack"
DOWNLOAD_PERMISSION = "staff.download_evidencepack"
LARGEST_DOWNLINES = 20
MAX_PERIOD_DAYS = 3660  # as the compliance report: ten years
PARTS = 7  # compliance report, rule versions, approvals, audit log, tree, fraud actions, README and manifest
TEXT_BUFFER = 256 * 1024
PROGRESS_EVERY = 10_000  # audit log rows written between two progress notes on the pack's row


class EvidencePackError(Exception):
    """A refused request; the message is fit to show."""


# --- Asking for a pack -------------------------------------------------------------------------------------------


def evidence_pack_request(*, date_from: date, date_to: date, actor=None) -> EvidencePack:
    """Queue the pack of the days `date_from`..`date_to` (inclusive; new, or again: the run replaces the earlier
    ZIP when it is done) and send its task after the commit. Refused (EvidencePackError) for a period that is
    reversed, longer than ten years or not begun, or while a run of it is under way. Writes a `requested` event."""
    if date_from > date_to:
        raise EvidencePackError(_("The start date is after the end date."))
    if date_from > timezone.localdate():
        raise EvidencePackError(_("This period has not begun yet."))
    if (date_to - date_from).days >= MAX_PERIOD_DAYS:
        raise EvidencePackError(_("Choose a period of at most ten years."))
    try:
        return file_job_request(
            JOB, lookup={"period_start": date_from, "period_end": date_to}, defaults={}, actor=actor,
            send=evidence_pack_send,
        )  # fmt: skip
    except FileJobBusy:
        raise EvidencePackError(_("This evidence pack is being generated now; wait for it to finish.")) from None


def evidence_pack_send(pack_id: int) -> bool:
    """Send the pack's task; False when the broker is unreachable (the pack stays queued: generate it again)."""
    from staff.tasks import evidence_pack_generate_task  # staff.tasks imports this module

    return task_send(
        evidence_pack_generate_task, pack_id, logger=logger, fallback="compliance can choose “Generate again”"
    )


# --- The tables --------------------------------------------------------------------------------------------------


def _member_label(first_name: str, last_name: str, email: str | None, phone: str | None) -> str:
    """A member as the pack names one: masked (a name's first character, else the email's or the phone's)."""
    name = f"{first_name or ''} {last_name or ''}".strip()
    return mask_name(name) if name else (mask_email(email or "") or mask_phone(phone or "") or "—")


def _members(ids: Iterable[int | None]) -> dict[int, str]:
    """{member id: masked label}, one query."""
    ids = {pk for pk in ids if pk}
    rows = (
        get_user_model()
        .objects.filter(member__pk__in=ids)
        .values_list("member__pk", "first_name", "last_name", "email", "phone")
    )
    return {pk: _member_label(first, last, email, phone) for pk, first, last, email, phone in rows}


def _field_values(obj: Model, names: dict[int, str]) -> dict:
    """Every concrete field of `obj` (a foreign key as its id; a user's also as the person's name, from `names`):
    exported generically, so a field added to the model later is in the pack without a change here."""
    values = {}
    for field in obj._meta.concrete_fields:
        values[field.attname] = getattr(obj, field.attname)
        if _is_person(field):
            values[field.name] = names.get(values[field.attname], "") if values[field.attname] else ""
    return values


def _is_person(field) -> bool:
    return field.is_relation and field.related_model is get_user_model()


def _field_columns(model: type[Model]) -> list[str]:
    """Every concrete field's column (a foreign key's id), and beside a user's id the person's name."""
    columns = []
    for field in model._meta.concrete_fields:
        columns += [field.attname, field.name] if _is_person(field) else [field.attname]
    return columns


APPROVAL_COLUMNS = [
    "approval_request", "approval_requested_by", "approval_requested_at", "approval_reason", "approved_by",
    "approved_at", "approval_note",
]  # fmt: skip


REQUEST_COLUMNS = [
    "id", "action", "object_type", "object_id", "summary", "reason", "status", "requested_by", "requested_at",
    "decided_by", "decided_at", "decision_note", "outcome",
]  # fmt: skip


def _approval_values(request: ApprovalRequest | None, names: dict[int, str]) -> dict:
    if request is None:
        return dict.fromkeys(APPROVAL_COLUMNS)
    return {
        "approval_request": request.pk,
        "approval_requested_by": names.get(request.requested_by_id, ""),
        "approval_requested_at": request.requested_at,
        "approval_reason": mask_contacts(request.reason),
        "approved_by": names.get(request.decided_by_id, ""),
        "approved_at": request.decided_at,
        "approval_note": mask_contacts(request.decision_note),
    }


def _in_force_during(versions: list, start: datetime, end: datetime) -> set[int]:
    """The pks of the versions (in force in order of `effective_from`) in force at some moment of [start, end)."""
    ordered = sorted(versions, key=lambda version: (version.effective_from, version.version))
    in_force = set()
    for version, following in zip(ordered, [*ordered[1:], None], strict=True):
        until = following.effective_from if following else None
        if version.effective_from < end and (until is None or until > start):
            in_force.add(version.pk)
    return in_force


def _rule_versions(start: datetime, end: datetime) -> tuple[Table, Table, Table]:
    """Every policy and plan version, all their fields, and the four-eyes request that put each in force: a policy
    version is published by approving the request made against the version in force before it (its target), a plan
    activated by approving the request made against it; the approver is the version's creator or activator."""
    policies = list(CompliancePolicy.objects.order_by("version"))
    plans = list(CommissionPlan.objects.order_by("version"))
    requests = list(
        ApprovalRequest.objects.filter(action__in=[PLAN_ACTIVATE, POLICY_PUBLISH]).order_by("requested_at", "pk")
    )
    names = people_names(
        [policy.created_by_id for policy in policies]
        + [user for plan in plans for user in (plan.created_by_id, plan.activated_by_id)]
        + [user for request in requests for user in (request.requested_by_id, request.decided_by_id)]
    )
    approved = {
        (request.action, request.target_id): request
        for request in requests
        if request.status == ApprovalRequest.Status.APPROVED
    }

    in_force = _in_force_during(policies, start, end)
    policy_rows = []
    for previous, policy in zip([None, *policies[:-1]], policies, strict=True):
        request = approved.get((POLICY_PUBLISH, str(previous.pk))) if previous else None
        if request is not None and request.decided_by_id != policy.created_by_id:
            request = None  # published some other way (before four eyes): not this request's doing
        policy_rows.append(
            {
                **_field_values(policy, names),
                "in_force_during_period": policy.pk in in_force,
                **_approval_values(request, names),
            }
        )
    activated = [plan for plan in plans if plan.is_activated and plan.effective_from]
    in_force = _in_force_during(activated, start, end)
    plan_rows = []
    for plan in plans:
        request = approved.get((PLAN_ACTIVATE, str(plan.pk)))
        if request is not None and request.decided_by_id != plan.activated_by_id:
            request = None
        plan_rows.append(
            {
                **_field_values(plan, names),
                "in_force_during_period": plan.pk in in_force,
                **_approval_values(request, names),
            }
        )
    approval_rows = [
        {
            "id": request.pk,
            "action": request.action,
            "object_type": request.target_type,
            "object_id": request.target_id,
            "summary": mask_contacts(request.summary),
            "reason": mask_contacts(request.reason),
            "status": request.status,
            "requested_by": names.get(request.requested_by_id, ""),
            "requested_at": request.requested_at,
            "decided_by": names.get(request.decided_by_id, ""),
            "decided_at": request.decided_at,
            "decision_note": mask_contacts(request.decision_note),
            "outcome": mask_contacts(request.outcome),
        }
        for request in requests
    ]
    extra = ["in_force_during_period", *APPROVAL_COLUMNS]
    return (
        Table(
            "policy_versions",
            "every compliance policy version: all its fields, who published it, the four-eyes request that "
            "approved it (who asked, why, who approved, when), and whether it was in force during the period",
            [*_field_columns(CompliancePolicy), *extra],
            policy_rows,
        ),
        Table(
            "plan_versions",
            "every commission plan version (drafts too): all its fields, who created and who activated it, the "
            "four-eyes request that approved its activation, and whether it was in force during the period",
            [*_field_columns(CommissionPlan), *extra],
            plan_rows,
        ),
        Table(
            "rule_approvals",
            "every four-eyes request to activate a plan or publish a policy version, whatever came of it (approved, "
            "refused, withdrawn, failed): who asked, why, who decided, the note and the outcome",
            REQUEST_COLUMNS,
            approval_rows,
        ),
    )


def _tree_tables(start: datetime, end: datetime) -> tuple[list[Table], dict]:
    depths = tree_depth_counts(before=end)
    pending = tree_pending_count(before=end)
    largest = tree_largest_downlines(before=end, limit=LARGEST_DOWNLINES)
    joins = tree_joins_by_month(start=start, end=end)
    labels = _members(downline.member_id for downline in largest)
    summary = {
        "members": sum(depths.values()) + pending,
        "members_placed": sum(depths.values()),
        "members_not_placed_yet": pending,
        "trees": depths.get(1, 0),
        "max_depth": max(depths, default=0),
        "joins_in_period": sum(joins.values()),
        "largest_downline": largest[0].size if largest else 0,
    }
    tables = [
        Table(
            "tree_summary",
            "the tree at the end of the period: members (who joined before it ends), trees (roots), the deepest "
            "level (1 = a root), joins in the period, the largest downline",
            ["figure", "value"],
            [{"figure": key, "value": value} for key, value in summary.items()],
        ),
        Table(
            "tree_depths",
            "members per depth (1 = a root) at the end of the period",
            ["depth", "members"],
            [{"depth": depth, "members": members} for depth, members in depths.items()],
        ),
        Table(
            "tree_largest_downlines",
            f"the {LARGEST_DOWNLINES} largest downlines at the end of the period (members masked)",
            ["member_id", "member", "depth", "downline_members"],
            [
                {
                    "member_id": downline.member_id,
                    "member": labels.get(downline.member_id, ""),
                    "depth": downline.depth,
                    "downline_members": downline.size,
                }
                for downline in largest
            ],
        ),
        Table(
            "tree_joins_by_month",
            "members who joined in each month of the period",
            ["month", "joins"],
            [{"month": month.strftime("%Y-%m"), "joins": count} for month, count in joins.items()],
        ),
    ]
    return tables, summary


FRAUD_COLUMNS = [
    "time", "decision", "rule", "flag", "subject", "subject_id", "member_id", "member", "amount", "actor", "reason",
    "ban_requested_by", "ban_requested_at", "ban_approved_by", "changes",
]  # fmt: skip


def _fraud_actions(start: datetime, end: datetime) -> Iterator[dict]:
    """The risk review's decisions in [start, end), oldest first: each release, reversal and ban with the rule, the
    actor, the reason and the amount reversed; a ban with the four-eyes request behind it; each rule change with
    what changed."""
    events = list(
        RiskEvent.objects.filter(created_at__gte=start, created_at__lt=end)
        .select_related("flag", "rule")
        .order_by("created_at", "pk")
    )
    member_ids = {event.member_id or (event.flag.member_id if event.flag_id else None) for event in events}
    bans = list(
        ApprovalRequest.objects.filter(
            action=MEMBER_BAN,
            status=ApprovalRequest.Status.APPROVED,
            target_id__in=[str(pk) for pk in member_ids if pk],
        ).order_by("decided_at", "pk")
    )
    names = people_names(
        [event.actor_id for event in events]
        + [user for ban in bans for user in (ban.requested_by_id, ban.decided_by_id)],
        masked=True,
    )
    members = _members(member_ids)
    for event in events:
        flag = event.flag
        member_id = event.member_id or (flag.member_id if flag else None)
        row = {
            "time": event.created_at,
            "decision": event.kind,
            "rule": flag.rule if flag else (event.rule.code if event.rule_id else ""),
            "flag": event.flag_id,
            "subject": flag.subject if flag else "",
            "subject_id": flag.subject_id if flag else None,
            "member_id": member_id,
            "member": members.get(member_id, "") if member_id else "",
            "amount": event.amount,
            "actor": names.get(event.actor_id, "system") if event.actor_id else "system",
            "reason": mask_contacts(event.reason),
        }
        if event.kind == RiskEvent.Kind.BANNED:
            # The request approved by this event's actor, for this member, decided at (or just before) the ban.
            request = next(
                (
                    ban
                    for ban in reversed(bans)
                    if ban.target_id == str(member_id)
                    and ban.decided_by_id == event.actor_id
                    and ban.decided_at <= event.created_at
                ),
                None,
            )
            if request is not None:
                row["ban_requested_by"] = names.get(request.requested_by_id, "")
                row["ban_requested_at"] = request.requested_at
                row["ban_approved_by"] = names.get(request.decided_by_id, "")
        if event.kind == RiskEvent.Kind.RULE_CHANGED:
            before, after = (event.detail or {}).get("before", {}), (event.detail or {}).get("after", {})
            row["changes"] = " ".join(
                f"{name} {before.get(name)} → {value}"
                for name, value in sorted(after.items())
                if before.get(name) != value
            )
        yield row


def _flag_counts(start: datetime, end: datetime) -> dict:
    raised = RiskFlag.objects.filter(created_at__gte=start, created_at__lt=end).aggregate(
        raised=Count("pk"),
        still_open=Count("pk", filter=Q(status=RiskFlag.Status.OPEN)),
        confirmed=Count("pk", filter=Q(status=RiskFlag.Status.CONFIRMED)),
        dismissed=Count("pk", filter=Q(status=RiskFlag.Status.DISMISSED)),
    )
    return {f"flags_{key}": value for key, value in raised.items()}


# --- Writing the ZIP ---------------------------------------------------------------------------------------------


class _TextFile:
    """UTF-8 text (with a BOM, which Excel needs to read anything but ASCII) into a file of the archive, in large
    writes: a csv.writer writes here."""

    def __init__(self, raw, *, bom: bool = True):
        self._raw = raw
        self._encoder = codecs.getincrementalencoder("utf-8")()
        self._buffer: list[str] = ["\ufeff"] if bom else []
        self._length = 0

    def write(self, text: str) -> None:
        self._buffer.append(text)
        self._length += len(text)
        if self._length > TEXT_BUFFER:
            self.flush()

    def flush(self) -> None:
        self._raw.write(self._encoder.encode("".join(self._buffer)))
        self._buffer, self._length = [], 0


def _write_compliance_report(archive: ChecksumZip, start: date, end: date) -> dict:
    report = compliance_report(date_from=start, date_to=end, capped_limit=0)
    with archive.open("compliance_report.csv") as raw:
        text = _TextFile(raw)
        compliance_report_csv_write(csv.writer(text), report, masked=True)
        text.flush()
    with archive.open("compliance_report.xlsx") as raw:
        workbook = XlsxStreamWriter(raw)
        for section, header, rows in compliance_report_sections(report, masked=True):
            workbook.sheet(section, header)
            for row in rows:
                workbook.append([_xlsx_cell(value) for value in row])
        workbook.close()
    return {
        "checks_passed": report.all_checks_passed,
        "checks": {check.code: check.passed for check in report.checks},
        "payout_ratio": str(report.payout_ratio) if report.payout_ratio is not None else None,
        "capped_entries": report.capped_count,
    }


def _xlsx_cell(value):
    """The CSV's cell for the sheet: numbers stay numbers, booleans and the rest are text."""
    return value if type(value) is int else ("" if value is None else str(value))


def _write_audit_log(archive: ChecksumZip, start: datetime, end: datetime, mine) -> int:
    rows = 0
    with archive.open("audit_log.csv") as raw:
        text = _TextFile(raw)
        writer = csv.writer(text)
        writer.writerow([str(name) for name in CSV_HEADER])
        for values in audit_csv_rows(AuditFilters(since=start, until=end), masked=True):
            writer.writerow(values)
            rows += 1
            if rows % PROGRESS_EVERY == 0:
                mine.update(step=f"audit log: {rows} rows")
        text.flush()
    return rows


def _readme(pack: EvidencePack, generated_at: datetime, generated_by: str, files: dict, summary: dict) -> str:
    zone = timezone.get_current_timezone()
    lines = [
        "Evidence pack",
        "=============",
        "",
        f"Period: {pack.period_start.isoformat()} to {pack.period_end.isoformat()} (both days included, "
        f"{settings.TIME_ZONE} time).",
        f"Generated: {export_value(generated_at, zone)} by the platform's back office (run {summary['run']}), "
        f"asked for by {generated_by}.",
        "",
        "Members are masked (a name's first character, an email's first letter, a phone's middle digits); staff are",
        "named. Amounts are exact decimals in the platform's currency. Times are ISO 8601 with their offset.",
        "Tables are there twice: as JSON (for programs) and as CSV (for a spreadsheet; text that a spreadsheet",
        "would run as a formula starts with an apostrophe).",
        "",
        "Files",
        "-----",
        "",
    ]
    for name, (description, rows) in files.items():
        counted = f" ({rows} rows)" if rows is not None else ""
        lines.append(f"{name}{counted}: {description}")
    lines += [
        "MANIFEST.sha256: the SHA-256 of every file above, in sha256sum format.",
        "",
        "Checking the pack",
        "-----------------",
        "",
        "Unpack the ZIP into an empty folder and run, in that folder:",
        "",
        "    sha256sum -c MANIFEST.sha256",
        "",
        "Every line must say OK. Then compare the SHA-256 of MANIFEST.sha256 itself (sha256sum MANIFEST.sha256)",
        "with the one the platform's staff gave you separately: if they match, no file was changed since the pack",
        "was generated. The platform's audit log records this pack's generation with the same checksum.",
        "",
    ]
    return "\n".join(lines)


def _write(pack: EvidencePack, run: int, mine) -> tuple[dict, dict]:
    """The ZIP of run `run`, written into encrypted pieces as it goes."""
    generated_at = timezone.now()
    start, end = period_bounds(pack.period_start, pack.period_end)
    mine.update(rows_total=PARTS)
    pieces = PieceWriter(JOB, pack, run)
    archive = ChecksumZip(pieces.sink)
    files: dict[str, tuple[str, int | None]] = {}

    def step(done: int, name: str) -> None:
        mine.update(rows_done=done, step=name)

    step(0, "compliance report")
    compliance = _write_compliance_report(archive, pack.period_start, pack.period_end)
    description = "the compliance report of the period, the same figures and sections as the staff page's CSV"
    files["compliance_report.csv"] = (description, None)
    files["compliance_report.xlsx"] = ("the same report, one sheet per section", None)

    step(1, "plan and policy versions")
    policies, plans, approvals = _rule_versions(start, end)
    for table in (policies, plans):
        files[f"{table.name}.json, {table.name}.csv"] = (table.description, zip_write_table(archive, table))

    step(2, "four-eyes requests")
    files["rule_approvals.json, rule_approvals.csv"] = (approvals.description, zip_write_table(archive, approvals))

    step(3, "audit log")
    audit_rows = _write_audit_log(archive, start, end, mine)
    files["audit_log.csv"] = (
        "the audit log of the period, newest first, every source (the staff page's export; members masked)",
        audit_rows,
    )

    step(4, "tree statistics")
    tables, tree = _tree_tables(start, end)
    for table in tables:
        files[f"{table.name}.json, {table.name}.csv"] = (table.description, zip_write_table(archive, table))

    step(5, "fraud actions")
    fraud = Table(
        "fraud_actions",
        "the risk review's decisions in the period (release, reverse, ban, rule change): the rule, the decision, "
        "who made it and why, the amount reversed; a ban with who asked for it and who approved it",
        FRAUD_COLUMNS,
        _fraud_actions(start, end),
    )
    files["fraud_actions.json, fraud_actions.csv"] = (fraud.description, zip_write_table(archive, fraud))

    step(6, "README and manifest")
    generated_by = people_names([pack.requested_by_id]).get(pack.requested_by_id, "the system")
    summary = {
        "period_from": pack.period_start.isoformat(),
        "period_to": pack.period_end.isoformat(),
        "time_zone": settings.TIME_ZONE,
        "generated_at": export_value(generated_at, timezone.get_current_timezone()),
        "generated_by": generated_by,
        "run": run,
        "compliance": compliance,
        "tree": tree,
        "fraud": _flag_counts(start, end),
        "audit_log_rows": audit_rows,
        "files": {name: rows for name, (_description, rows) in files.items()},
    }
    files["summary.json"] = ("the key figures of this pack, for a program", None)
    archive.writestr("summary.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n")
    archive.writestr("README.txt", _readme(pack, generated_at, generated_by, files, summary))
    manifest_sha256 = archive.close()
    pieces.sink.close()
    fields = {
        "rows_done": PARTS,
        "step": "",
        "audit_rows": audit_rows,
        "manifest_sha256": manifest_sha256,
        "zip_sha256": pieces.sha256.hexdigest(),
        "zip_size": pieces.size,
    }
    detail = {
        "manifest_sha256": manifest_sha256,
        "zip_sha256": fields["zip_sha256"],
        "audit_rows": audit_rows,
        "checks_passed": compliance["checks_passed"],
    }
    return fields, detail


def evidence_pack_generate(*, pack_id: int) -> EvidencePack | None:
    """Generate the pack's ZIP. Safe to run twice or at once: only the run that took the lease writes, and its ZIP
    replaces the earlier one only when it finished still holding the lease (staff.file_jobs). Any error is
    recorded on the pack (failed, with the reason) and logged, never raised. Returns the pack."""
    return file_job_run(JOB, pack_id, _write, started={"step": ""})


# --- The download ------------------------------------------------------------------------------------------------


def evidence_pack_may_download(user) -> bool:
    return bool(user and user.is_active and user.is_staff and user.has_perm(DOWNLOAD_PERMISSION))


def evidence_pack_download(*, pack: EvidencePack, actor) -> Iterator[bytes]:
    """The pack's ZIP, piece by piece, for staff holding the permission; records the download (who, which run, the
    manifest's checksum) before the first byte. Raises PermissionDenied for anyone else (nothing recorded)."""
    if not evidence_pack_may_download(actor):
        raise PermissionDenied(_("Only staff allowed to download evidence packs may download them."))
    JOB.event(
        pack,
        EvidencePackEvent.Kind.DOWNLOADED,
        actor=actor,
        detail={"run": pack.generation, "manifest_sha256": pack.manifest_sha256, "zip_sha256": pack.zip_sha256},
    )
    return pieces_stream(JOB, pack)
