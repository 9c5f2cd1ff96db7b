from django.contrib.auth.models import Group, Permission
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from staff.groups import GROUP_PERMISSIONS


class Command(BaseCommand):
    help = "Create the staff groups (support, finance, compliance) and give each exactly its permissions."

    @transaction.atomic
    def handle(self, *args, **options):
        for name, wanted in GROUP_PERMISSIONS.items():
            permissions = []
            for dotted in wanted:
                app_label, codename = dotted.split(".", 1)
                permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
                if permission is None:
                    raise CommandError(f"Unknown permission {dotted}: run `manage.py migrate` first.")
                permissions.append(permission)
            group, created = Group.objects.get_or_create(name=name)
            group.permissions.set(permissions)
            if options["verbosity"] >= 1:
                self.stdout.write(f"{'Created' if created else 'Updated'} group {name}: {len(permissions)} permissions")
