import logging

from celery import shared_task

from core.task_helpers import IDEMPOTENT_TASK
from networks.connectors import CONNECTORS, connector_configured
from networks.connectors.base import ConnectorError
from networks.models import Network
from networks.services import network_sync, report_import_run

logger = logging.getLogger(__name__)


@shared_task
def networks_sync_task() -> int:
    """Periodic: one sync task per enabled network, so one network failing does not hold up the others.
    A network whose connector is not configured (no URL, key or secret in the environment) is left out."""
    codes = [
        code
        for code in Network.objects.filter(is_enabled=True, code__in=list(CONNECTORS))
        .order_by("code")
        .values_list("code", flat=True)
        if connector_configured(code)
    ]
    for code in codes:
        try:
            network_sync_one_task.delay(code)
        except Exception:  # run in-process (eager), a network's failure surfaces here: the others still sync
            logger.exception("sync of network %s failed", code)
    return len(codes)


@shared_task(
    bind=True,
    autoretry_for=(ConnectorError,),
    retry_backoff=30,
    retry_backoff_max=30 * 60,
    retry_jitter=True,
    max_retries=5,
)
def network_sync_one_task(self, code: str) -> int:
    """Sync one network's orders; a network that cannot be reached is retried with growing pauses."""
    network = Network.objects.filter(code=code, is_enabled=True).first()
    if network is None:
        return 0
    run = network_sync(network=network)
    return run.fetched if run else 0


@shared_task(**IDEMPOTENT_TASK)
def report_import_run_task(import_id: int) -> str:
    """Import an uploaded order-report file (queued by the admin upload). Idempotent: a finished import is left
    alone and a second delivery cannot start a run while one holds the import's lease."""
    record = report_import_run(import_id=import_id)
    return record.status if record is not None else "gone"
