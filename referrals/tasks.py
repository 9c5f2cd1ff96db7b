import logging

from celery import shared_task

from referrals.selectors import tree_check
from referrals.services import clicks_flush, tree_index_run

logger = logging.getLogger("referrals.tree")


@shared_task
def tree_check_task() -> int:
    """Nightly: verify the nested sets against the parent links; alert staff (ADMINS) if wrong.

    Read-only, so safe to run twice. Repair stays a deliberate staff act
    (`check_referral_tree --fix`). Returns the number of problems found.
    """
    report = tree_check()
    problems = len(report.wrong) + len(report.unreachable)
    if problems:
        logger.error(
            "Referral tree check: %s problem(s) in %s members. Run `manage.py check_referral_tree --fix`.\n%s",
            problems,
            report.checked,
            "\n".join(report.describe(limit=20)),
        )
    else:
        logger.info("Referral tree check: %s members, all consistent.", report.checked)
    return problems


@shared_task
def clicks_flush_task() -> int:
    """Periodic: move counted clicks into the database. Safe to run twice or concurrently.

    Its runs are recorded for the staff overview's health figures (staff.jobs: JobRun "clicks_flush").
    """
    return clicks_flush()


@shared_task
def tree_index_pending_task() -> int:
    """Place pending members into the nested sets (after joins, and every few seconds from the beat).

    Serialised by the tree lock and exactly-once by construction (it places only what is still pending), so
    duplicate or concurrent deliveries only wait for each other. Not acks_late: a lost run is redone by the beat.
    """
    return tree_index_run()
