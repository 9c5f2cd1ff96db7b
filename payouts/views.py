"""Payouts' own views. The payout rails' notification endpoint: WeChat Pay posts a transfer bill's final state here
(notify_url). And the response serving a business payee's invoice file, for the views that checked who asks.

No login and no CSRF token (the rail signs the notification; payouts.services checks it). The answer is 200 with
the outcome, which WeChat Pay takes as acknowledged, or 400 with the reason a notification was refused (forged,
stale, for a transfer we never made): the rail sends it again on its schedule, and nothing changed.
"""

import logging

from django.http import FileResponse, Http404, HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.machine import machine_endpoint
from payouts.models import Invoice
from payouts.services import payout_transfer_notification_receive
from shops.payments.base import WebhookRejected

logger = logging.getLogger(__name__)


@machine_endpoint
@csrf_exempt
@require_POST
def transfer_notification(request, rail: str):
    try:
        outcome = payout_transfer_notification_receive(rail=rail, body=request.body, headers=request.headers)
    except WebhookRejected as error:
        logger.warning("transfer notification from %s refused: %s", rail, error)
        return HttpResponseBadRequest(f"refused: {error}", content_type="text/plain")
    logger.info("transfer notification from %s: %s", rail, outcome)
    return HttpResponse(outcome, content_type="text/plain")


# A business payee's invoice file, for the checked views that serve it (members' own page, finance's admin).
INVOICE_CONTENT_TYPES = {
    Invoice.FileType.PDF: "application/pdf",
    Invoice.FileType.OFD: "application/ofd",
    Invoice.FileType.JPEG: "image/jpeg",
    Invoice.FileType.PNG: "image/png",
}


def invoice_file_response(invoice: Invoice) -> FileResponse:
    """An invoice's file as a download (never rendered in the page's origin), not cached anywhere."""
    extension = {"jpeg": "jpg"}.get(invoice.file_type, invoice.file_type)
    try:
        handle = invoice.file.open("rb")
    except FileNotFoundError as error:  # lost from the storage: say so to the log, a 404 to the reader
        logger.error("invoice %s: its file %s is missing from the private storage", invoice.pk, invoice.file.name)
        raise Http404("no file") from error
    response = FileResponse(
        handle,
        as_attachment=True,
        filename=f"invoice-{invoice.withdrawal_id}-{invoice.pk}.{extension}",
        content_type=INVOICE_CONTENT_TYPES.get(invoice.file_type, "application/octet-stream"),
    )
    response["Cache-Control"] = "private, no-store"
    response["X-Content-Type-Options"] = "nosniff"
    return response
