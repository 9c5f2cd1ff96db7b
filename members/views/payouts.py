"""The member's payout pages: balance and withdrawals, payout account, statement. Thin: services do the work.

Everything is looked up through the member of the logged-in user, so another member's withdrawal is a 404
and a member's statement and account can only ever be their own.
"""

import csv
import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.identity import identity_for_user, identity_is_business, identity_is_verified, identity_masked
from core.forms import add_service_errors
from core.money import ZERO, format_money
from core.site_url import absolute_url
from members.decorators import member_required, suspended_refused
from members.forms import InvoiceForm, PayoutAccountForm, WithdrawalForm
from members.income_pdf import Payee, income_statement_pdf
from payouts.invoices import OPEN_FOR_INVOICE, invoice_submit
from payouts.models import Invoice, Withdrawal
from payouts.selectors import (
    invoice_buyer,
    member_balance,
    member_income_statement,
    member_income_years,
    member_invoice,
    member_payout_account,
    member_statement,
    member_withdrawal,
    member_withdrawals,
    transfer_confirmation,
    withdrawal_invoices,
)
from payouts.services import (
    PayoutError,
    payout_account_bind_wechat,
    payout_account_save,
    payout_transfer_sync,
    withdrawal_cancel,
    withdrawal_request,
)
from payouts.views import invoice_file_response
from referrals.selectors import member_for_user
from shops.payments import wechat_oauth
from shops.payments.base import ProviderError, mask
from shops.payments.methods import browser_kind

logger = logging.getLogger(__name__)

# The overview lists the latest withdrawals; the statement has every one of them.
OVERVIEW_WITHDRAWALS = 50
# Binding a WeChat payee: the OAuth on its way in the session, and how long WeChat may take to send the browser back.
WECHAT_BIND_SESSION_KEY = "payout_wechat_oauth"
WECHAT_BIND_MAX_AGE = 600


@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_http_methods(["GET", "POST"])
def overview(request):
    member = request.member
    form = WithdrawalForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            withdrawal = withdrawal_request(member=member, amount=form.cleaned_data["amount"])
        except PayoutError as error:
            add_service_errors(form, error)
        else:
            if withdrawal.is_business:
                message = _(
                    "Withdrawal of %(amount)s requested. Your business is paid against its invoice: upload the "
                    "invoice for this withdrawal now."
                )
                messages.success(request, message % {"amount": format_money(withdrawal.amount)})
                return redirect("members:withdrawal_invoice", withdrawal.pk)
            if withdrawal.status == Withdrawal.Status.REQUESTED:
                message = _("Withdrawal of %(amount)s requested; finance staff will review it.")
            else:
                message = _("Withdrawal of %(amount)s approved; it goes out with the next payout batch.")
            messages.success(request, message % {"amount": format_money(withdrawal.amount)})
            return redirect("members:payouts")
    context = {
        "member": member,
        "balance": member_balance(member),
        "account": member_payout_account(member),
        "form": form,
        "withdrawals": _with_confirmations(list(member_withdrawals(member)[:OVERVIEW_WITHDRAWALS])),
        "minimum": settings.WITHDRAWAL_MINIMUM,
        # Issue #24: no withdrawal before the identity is verified; the page links to the identity page.
        "identity_verified": identity_is_verified(member.user),
    }
    return render(request, "members/payouts.html", context, status=400 if form.errors else 200)


def _with_confirmations(withdrawals: list) -> list:
    """Each withdrawal with `wechat_confirmation`: what the page hands WeChat to confirm receipt, or None."""
    now = timezone.now()
    for withdrawal in withdrawals:
        withdrawal.wechat_confirmation = transfer_confirmation(withdrawal, now)
    return withdrawals


@sensitive_post_parameters("holder_name", "account_number", "alipay_account", "wechat_id")
@sensitive_variables("form", "current", "saved")
@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_http_methods(["GET", "POST"])
def account(request):
    member = request.member
    current = member_payout_account(member)
    form = PayoutAccountForm(request.POST or None, account=current)
    if request.method == "POST" and form.is_valid():
        try:
            saved = payout_account_save(member=member, **form.service_arguments())
        except PayoutError as error:
            add_service_errors(form, error)
        else:
            messages.success(request, _("Payout account saved: %(account)s.") % {"account": saved})
            return redirect("members:payouts")
    identity = identity_for_user(request.user)
    context = {
        "account": current,
        "form": form,
        # A business payee is paid to an account in the company's name, never by WeChat Pay (docs/tax.md).
        "business_name": identity.company_name if identity_is_business(identity) else "",
        "in_wechat": browser_kind(request.headers.get("user-agent", "")) == "wechat",
        "wechat_bind_available": wechat_oauth.is_configured(),
        "wechat_payee": mask(current.wechat_openid) if current and current.method == current.Method.WECHAT else "",
    }
    return render(request, "members/payout_account.html", context, status=400 if form.errors else 200)


@member_required
@require_GET
def account_wechat_bind(request):
    """Bind the member's WeChat as their payee: ask WeChat (silently, inside its browser) who they are. The browser
    comes back to `account_wechat_return` with this session's state; no member is named in either URL."""
    current = member_payout_account(request.member)
    if current is None or current.method != current.Method.WECHAT:
        messages.error(request, _("Choose WeChat Pay as the payout method first."))
        return redirect("members:payout_account")
    if browser_kind(request.headers.get("user-agent", "")) != "wechat":
        messages.error(request, _("Open this page in WeChat to bind your WeChat."))
        return redirect("members:payout_account")
    if not wechat_oauth.is_configured():
        messages.error(request, _("Binding a WeChat payee is not available just now; contact support."))
        return redirect("members:payout_account")
    state = wechat_oauth.state_begin(request.session, WECHAT_BIND_SESSION_KEY)
    return redirect(wechat_oauth.authorize_url(absolute_url(reverse("members:payout_account_wechat_return")), state))


@member_required
@require_GET
def account_wechat_return(request):
    """WeChat sends the member back here with `code` and `state`: a state this session sent (once, recently), a code
    WeChat exchanges for the openid, bound as this session's member's WeChat payee."""
    state = request.GET.get("state", "")
    if wechat_oauth.state_finish(request.session, WECHAT_BIND_SESSION_KEY, state, max_age=WECHAT_BIND_MAX_AGE) is None:
        logger.warning("WeChat payee binding refused: no matching state in this session")
        return render(request, "members/wechat_bind_refused.html", status=400)
    try:
        openid = wechat_oauth.openid_for_code(request.GET.get("code", ""))
    except wechat_oauth.WeChatOAuthError as error:
        logger.warning("WeChat payee binding for member %s failed: %s", request.member.pk, error)
        message = _("WeChat could not tell us who you are, so your WeChat is not bound. Please try again.")
        messages.error(request, message)
        return redirect("members:payout_account")
    try:
        payout_account_bind_wechat(member=request.member, openid=openid)
    except PayoutError as error:
        messages.error(request, " ".join(error.messages))
        return redirect("members:payout_account")
    logger.info("WeChat payee bound for member %s: openid %s", request.member.pk, mask(openid))
    messages.success(request, _("Your WeChat is bound: withdrawals by WeChat Pay go to this WeChat."))
    return redirect("members:payout_account")


@member_required(suspended_may_read=True)  # read-only for a suspended member
def statement(request):
    member = request.member
    lines = member_statement(member)
    if request.GET.get("format") == "csv":
        return _statement_csv(member, lines)
    return render(
        request,
        "members/payout_statement.html",
        {"member": member, "lines": lines, "closing": lines[-1].balance if lines else ZERO},
    )


@member_required(suspended_may_read=True)  # read-only for a suspended member
def statement_csv(request):
    member = request.member
    return _statement_csv(member, member_statement(member))


def _statement_csv(member, lines) -> HttpResponse:
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    stamp = timezone.localdate().isoformat()
    response["Content-Disposition"] = f'attachment; filename="statement-{member.invite_code}-{stamp}.csv"'
    response.write("\ufeff")  # so Excel reads the file as UTF-8
    writer = csv.writer(response)
    # Headers in the member's language (issue #23); the rows are plain dates and decimals in any language.
    writer.writerow([_("date"), _("description"), _("amount"), _("balance"), _("tax_withheld"), _("net_paid")])
    for line in lines:
        # Amounts as plain decimals (no symbol, no thousands separator), so a spreadsheet can sum them. A withdrawal
        # that was sent has its income tax withheld and the net paid (its amount is the gross).
        writer.writerow(
            [
                timezone.localtime(line.at).strftime("%Y-%m-%d %H:%M:%S"),
                line.description,
                line.amount,
                line.balance,
                "" if line.tax is None else line.tax,
                "" if line.net is None else line.net,
            ]
        )
    return response


# The years an income statement may be asked for: from the first payouts to well past now.
INCOME_YEARS = range(2000, 2200)


@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_GET
def income_statement(request):
    """The member's income from the platform and the income tax withheld from it, by year and month, for their own
    annual filing (docs/tax.md); each year downloadable as CSV."""
    member = request.member
    years = [member_income_statement(member, year) for year in member_income_years(member)]
    return render(request, "members/income_statement.html", {"member": member, "years": years})


@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_GET
def income_statement_csv(request, year: int):
    """One year's income statement as CSV: each paid withdrawal (income date, gross, tax, net, the rule), then the
    months' totals and the year's."""
    if year not in INCOME_YEARS:
        raise Http404(_("No such year."))
    member = request.member
    statement = member_income_statement(member, year)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="income-{member.invite_code}-{year}.csv"'
    response.write("\ufeff")  # so Excel reads the file as UTF-8
    writer = csv.writer(response)
    writer.writerow(["income_date", "withdrawal", "gross", "tax_withheld", "net_paid", "method"])
    for entry in statement.payouts:
        writer.writerow(
            [entry.paid_on.isoformat(), entry.withdrawal_id, entry.gross, entry.tax, entry.net, entry.method]
        )
    writer.writerow([])
    writer.writerow(["month", "payouts", "gross", "tax_withheld", "net_paid", ""])
    for month in statement.months:
        writer.writerow([f"{year}-{month.month:02d}", month.payouts, month.gross, month.tax, month.net, ""])
    writer.writerow(
        [str(year), sum(m.payouts for m in statement.months), statement.gross, statement.tax, statement.net, ""]
    )
    if statement.business_payouts:  # paid to the member's business against invoices: not in the figures above
        writer.writerow([])
        writer.writerow(["income_date", "withdrawal", "gross", "tax_withheld", "net_paid", "method", "invoice"])
        for entry in statement.business_payouts:
            number = entry.invoice.display_number if entry.invoice else ""
            writer.writerow(
                [
                    entry.paid_on.isoformat(),
                    entry.withdrawal_id,
                    entry.gross,
                    entry.tax,
                    entry.net,
                    entry.method,
                    number,
                ]
            )
    return response


def _payee(member) -> Payee:
    """Who an income statement is for, masked as every page shows it."""
    identity = identity_for_user(member.user)
    if identity is None:
        return Payee(display_name=member.display_name, invite_code=member.invite_code)
    masked = identity_masked(identity)
    company = f"{masked.company_name} ({masked.credit_code})" if masked.payee_kind == "business" else ""
    return Payee(
        display_name=member.display_name,
        invite_code=member.invite_code,
        legal_name=masked.name,
        id_label=f"{masked.id_type_label} {masked.number}",
        company=company,
    )


@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_GET
def income_statement_pdf_view(request, year: int):
    """One year's income statement as a PDF document to keep or hand to an accountant (members/income_pdf.py)."""
    if year not in INCOME_YEARS:
        raise Http404(_("No such year."))
    member = request.member
    statement = member_income_statement(member, year)
    if not statement.payouts:
        raise Http404(_("No income in that year."))
    response = HttpResponse(
        income_statement_pdf(statement=statement, payee=_payee(member)), content_type="application/pdf"
    )
    response["Content-Disposition"] = f'attachment; filename="income-{member.invite_code}-{year}.pdf"'
    return response


@suspended_refused
@login_required
@require_POST
def withdrawal_cancel_view(request, withdrawal_id: int):
    member = member_for_user(request.user)
    withdrawal = member_withdrawal(member, withdrawal_id) if member else None
    if withdrawal is None:
        raise Http404(_("No such withdrawal."))
    try:
        withdrawal_cancel(withdrawal=withdrawal, member=member)
    except PayoutError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, _("Withdrawal %(id)s cancelled; the money is back in your balance.") % {"id": withdrawal.pk}
        )
    return redirect("members:payouts")


@suspended_refused
@login_required
@require_POST
def withdrawal_transfer_refresh(request, withdrawal_id: int):
    """Ask the payout rail how the withdrawal's transfer stands now (after the member confirmed receipt in WeChat,
    or to see whether it arrived) and apply the answer."""
    member = member_for_user(request.user)
    withdrawal = member_withdrawal(member, withdrawal_id) if member else None
    transfer = getattr(withdrawal, "transfer", None) if withdrawal else None
    if transfer is None:
        raise Http404(_("No such withdrawal."))
    if withdrawal.status == Withdrawal.Status.PROCESSING:
        try:
            payout_transfer_sync(transfer=transfer)
        except (ProviderError, PayoutError):
            messages.error(request, _("The payout provider cannot be reached just now; try again in a minute."))
            return redirect("members:payouts")
        withdrawal.refresh_from_db()
    messages.success(
        request,
        _("Withdrawal %(id)s is %(status)s.")
        % {"id": withdrawal.pk, "status": withdrawal.get_status_display().lower()},
    )
    return redirect("members:payouts")


def _own_withdrawal(request, withdrawal_id: int) -> Withdrawal:
    withdrawal = member_withdrawal(request.member, withdrawal_id)
    if withdrawal is None or not withdrawal.is_business:
        raise Http404(_("No such withdrawal."))
    return withdrawal


@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_http_methods(["GET", "POST"])
def withdrawal_invoice(request, withdrawal_id: int):
    """A business payee's invoice for one of their withdrawals (docs/tax.md, "Business payees"): what to put on it,
    the upload, the invoices so far and their review. Another member's withdrawal is a 404."""
    withdrawal = _own_withdrawal(request, withdrawal_id)
    invoices = withdrawal_invoices(withdrawal)
    live = next((invoice for invoice in invoices if invoice.status != Invoice.Status.REJECTED), None)
    can_upload = live is None and withdrawal.status in OPEN_FOR_INVOICE and request.member.is_active
    form = InvoiceForm(request.POST or None, request.FILES or None) if can_upload else None
    if request.method == "POST":
        if form is None:
            messages.error(request, _("This withdrawal takes no new invoice now."))
            return redirect("members:withdrawal_invoice", withdrawal.pk)
        if form.is_valid():
            try:
                invoice_submit(withdrawal=withdrawal, member=request.member, **form.cleaned_data)
            except PayoutError as error:
                add_service_errors(form, error)
            else:
                messages.success(request, _("Invoice uploaded; finance staff will review it."))
                return redirect("members:withdrawal_invoice", withdrawal.pk)
    context = {
        "withdrawal": withdrawal,
        "invoices": invoices,
        "live": live,
        "form": form,
        "buyer": invoice_buyer(),
        "seller": {
            "name": withdrawal.account.get("company_name", ""),
            "tax_id": withdrawal.account.get("credit_code", ""),
        },
    }
    status = 400 if form is not None and form.errors else 200
    return render(request, "members/withdrawal_invoice.html", context, status=status)


@member_required(suspended_may_read=True)  # read-only for a suspended member
@require_GET
def withdrawal_invoice_file(request, withdrawal_id: int, invoice_id: int):
    """The member's own invoice file (a download, never cached); anyone else's is a 404."""
    invoice = member_invoice(request.member, withdrawal_id, invoice_id)
    if invoice is None:
        raise Http404(_("No such invoice."))
    return invoice_file_response(invoice)
