"""A Celery app for `bench/commissions.py --celery-app bench.celery_no_risk`: the project's, with the fraud rules'
scoring at the split switched off in every worker process. Run the benchmark once with it and once without to see
what scoring adds to the split per paid order (issue #25: at most 1 ms)."""

from celery.signals import worker_process_init

from config.celery import app

__all__ = ["app"]


@worker_process_init.connect
def _scoring_off(**_kwargs) -> None:
    from commissions.services import split

    split.risk_score_orders = lambda order_ids: 0
