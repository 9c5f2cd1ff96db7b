from django.core.management.base import BaseCommand, CommandError

from staff.ledger_check import ledger_check


class Command(BaseCommand):
    help = (
        "Check the money and the tree: split lines reconcile, no duplicate entries, paid orders split, refunds "
        "reversed, no payout twice or beyond what was released, stock never below zero, the referral tree valid, no "
        "open difference with the payment providers' bills. "
        "Prints each violation; exits non-zero if there is any."
    )

    def handle(self, *args, **options):
        results = ledger_check()
        for result in results:
            mark = self.style.SUCCESS("ok  ") if result.passed else self.style.ERROR("FAIL")
            self.stdout.write(f"{mark} {result.name}: {result.checked} checked, {result.count} violation(s)")
            for violation in result.violations:
                self.stdout.write(f"       {violation}")
            if result.count > len(result.violations):
                self.stdout.write(f"       … and {result.count - len(result.violations)} more")
        failed = sum(result.count for result in results)
        if failed:
            raise CommandError(f"{failed} violation(s).")
