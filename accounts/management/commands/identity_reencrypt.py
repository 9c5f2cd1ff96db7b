"""Re-encrypt identities with the newest key of IDENTITY_KEYS after a key rotation (docs/privacy.md)."""

from django.core.management.base import BaseCommand

from accounts.identity import identities_reencrypt


class Command(BaseCommand):
    help = (
        "Re-encrypt every member identity that an older key of IDENTITY_KEYS encrypted with the newest key; "
        "--reindex also recomputes the blind index after IDENTITY_INDEX_KEY changed. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--reindex", action="store_true", help="recompute the ID number blind index too")
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, **options):
        changed = identities_reencrypt(reindex=options["reindex"], batch_size=options["batch_size"])
        self.stdout.write(f"{changed} identities re-encrypted with the newest key.")
