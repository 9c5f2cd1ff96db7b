"""The payout rails' notification endpoint: WeChat Pay posts a transfer bill's final state here (notify_url).

No login and no CSRF token (the rail signs the notification; payouts.services checks it). The answer is 200 with
the outcome, which WeChat Pay takes as acknowledged, or 400 with the reason a notification was refused (forged,
stale, for a transfer we never made): the rail sends it again on its schedule, and nothing changed.
"""

import logging

from django.http import HttpResponse, HttpResponseBadRequest
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from core.machine import machine_endpoint
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
