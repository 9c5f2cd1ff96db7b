from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext as _

from core.site_url import absolute_url
from demo.payouts import demo_money
from demo.shops import DEMO_SHOP_SLUG, demo_external_products, demo_storefront
from demo.translations import demo_catalogue_translate
from networks.connectors import connector_settings
from referrals.models import Member
from referrals.services import member_join
from staff.groups import COMPLIANCE, FINANCE, SUPPORT

DEMO_STAFF_GROUPS = (SUPPORT, FINANCE, COMPLIANCE)  # one staff login per group: <group>@example.com

# (email, name, sponsor's email or None): a founder, then three levels below.
DEMO_NAMES = ["Li Na", "Wang Wei", "Zhang Min", "Liu Yang", "Chen Jing", "Yang Fan", "Zhao Lei", "Huang Li", "Zhou Tao"]


def _demo_tree() -> list[tuple[str, str, str | None]]:
    people = [("founder@example.com", "Founder Sun", None)]
    level = [people[0][0]]
    counter = 0
    for width in (3, 3, 2):
        next_level = []
        for sponsor in level:
            for _position in range(width):
                counter += 1
                email = f"member{counter}@example.com"
                people.append((email, DEMO_NAMES[counter % len(DEMO_NAMES)], sponsor))
                next_level.append(email)
        level = next_level
    return people


class Command(BaseCommand):
    help = "Load demo data (idempotent: running it again adds nothing twice) and print the demo logins."

    def add_arguments(self, parser):
        parser.add_argument(
            "--wait-for-sandbox",
            type=float,
            default=0,
            metavar="SECONDS",
            help="keep trying this long to reach the sandbox network while it starts (make run: 15)",
        )

    def handle(self, *args, **options):
        # Public logins with a published password: never in production.
        if settings.IS_PRODUCTION:
            raise CommandError(
                _(
                    "The demo refuses to run with DEBUG=0: it creates logins whose password is published. Run it "
                    "only in development (DEBUG=1)."
                )
            )
        # The demo is written in English, the catalogue's language of record (keyed on English titles and names),
        # whatever LANGUAGE_CODE is; then the catalogue gets its Chinese (issue #23).
        with translation.override(settings.MODELTRANSLATION_DEFAULT_LANGUAGE):
            created, new_orders = self._people_and_shops()
            demo_catalogue_translate()
        demo_money(self.stdout, new_orders)
        # Outside the transaction above: HTTP calls to the sandbox network, which may be down (then a warning).
        demo_external_products(self.stdout, wait_seconds=options["wait_for_sandbox"])
        self._print_logins(created)

    @transaction.atomic
    def _people_and_shops(self) -> tuple[int, dict[int, int]]:
        User = get_user_model()
        password = settings.DEMO_PASSWORD
        if not User.objects.filter(email="admin@example.com").exists():
            User.objects.create_superuser("admin@example.com", password, first_name="Admin")
        call_command("staff_groups", verbosity=0)
        for group_name in DEMO_STAFF_GROUPS:
            email = f"{group_name}@example.com"
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email, password, first_name=group_name.title(), is_staff=True)
                user.groups.add(Group.objects.get(name=group_name))

        created = 0
        for email, name, sponsor_email in _demo_tree():
            user = User.objects.filter(email=email).first()
            if user is None:
                user = User.objects.create_user(email, password, first_name=name)
            if Member.objects.filter(user=user).exists():
                continue
            sponsor = Member.objects.get(user__email=sponsor_email) if sponsor_email else None
            member_join(user=user, sponsor=sponsor, use_default_sponsor=False)
            created += 1

        new_orders = demo_storefront(self.stdout)
        return created, new_orders

    def _print_logins(self, created: int) -> None:
        password = settings.DEMO_PASSWORD
        self.stdout.write(self.style.SUCCESS(f"Demo data ready ({created} new members)."))
        self.stdout.write(f"Logins (password for all: {password}):")
        self.stdout.write(f"  staff (admin at {reverse('admin:index')}): admin@example.com (superuser)")
        self.stdout.write("  staff groups: support@example.com, finance@example.com, compliance@example.com")
        self.stdout.write("  founder (top of the tree): founder@example.com")
        self.stdout.write("  member three levels down:  member13@example.com")
        shop_url = absolute_url(reverse("shops:shop_home", args=[DEMO_SHOP_SLUG]))
        self.stdout.write(f"  demo shop (buyers, no login): {shop_url} (the founder's)")
        sandbox_url = connector_settings("sandbox").get("URL", "")
        self.stdout.write(f"  sandbox affiliate network (its products, buy pages, orders): {sandbox_url}/")
