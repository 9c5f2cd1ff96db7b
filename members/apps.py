from django.apps import AppConfig


class MembersConfig(AppConfig):
    """The shop owner's side: pages and REST API. No models: it reads and writes through the apps below it."""

    name = "members"
    verbose_name = "Members"
