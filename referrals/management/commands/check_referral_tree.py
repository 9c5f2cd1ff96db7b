from django.core.management.base import BaseCommand, CommandError

from referrals.selectors import tree_check
from referrals.services import ReferralError, tree_repair


class Command(BaseCommand):
    help = (
        "Check every member's nested-set fields (lft, rght, tree_id, level) against the parent links. "
        "Prints what is wrong and exits non-zero if anything is; --fix rewrites them from the parent links."
    )

    def add_arguments(self, parser):
        parser.add_argument("--fix", action="store_true", help="Repair the nested-set fields from the parent links.")
        parser.add_argument("--limit", type=int, default=50, help="Print at most this many problems (default 50).")

    def handle(self, *args, fix: bool, limit: int, **options):
        report = tree_check()
        waiting = f"; {report.pending} new member(s) wait for the index pass" if report.pending else ""
        if report.is_valid:
            self.stdout.write(
                self.style.SUCCESS(f"OK: {report.checked} members, nested sets match the parent links{waiting}.")
            )
            return
        for line in report.describe(limit=limit):
            self.stdout.write(line)
        problems = len(report.wrong) + len(report.unreachable)
        if not fix:
            raise CommandError(f"{problems} problem(s) in {report.checked} members. Run with --fix to repair.")
        try:
            changed = tree_repair()
        except ReferralError as error:
            raise CommandError(" ".join(error.messages)) from error
        after = tree_check()
        if not after.is_valid:
            raise CommandError(f"Repair left {len(after.wrong) + len(after.unreachable)} problem(s).")
        self.stdout.write(self.style.SUCCESS(f"Fixed: rewrote {changed} member(s); the tree is consistent now."))
