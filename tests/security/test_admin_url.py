"""Admin (and the back office under it) lives at settings.ADMIN_URL; nothing assumes /admin/.

URLs are built when config.urls is imported, so the moved admin is checked in a fresh interpreter with ADMIN_URL
set, as a deployment would set it.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from django.urls import reverse

ROOT = Path(__file__).resolve().parents[2]
PROBE = """
import json, django
django.setup()
from django.test import Client
from django.urls import reverse
client = Client()
def answer(path):
    response = client.get(path)
    return [response.status_code, response.get("Location", "")]
print(json.dumps({
    "index": reverse("admin:index"),
    "overview": reverse("staff:overview"),
    "moved_login": answer("/staff-7f3a/login/"),
    "moved_index": answer("/staff-7f3a/"),
    "moved_back_office": answer("/staff-7f3a/back-office/overview/"),
    "old_login": answer("/admin/login/"),
    "old_index": answer("/admin/"),
    "old_back_office": answer("/admin/back-office/overview/"),
}))
"""


def test_admin_answers_at_admin_url_and_not_at_admin(tmp_path):
    env = {key: value for key, value in os.environ.items() if key not in ("DATABASE_URL", "DEBUG", "ADMIN_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings", ADMIN_URL="staff-7f3a", DATABASE_URL=f"sqlite:///{tmp_path}/db"
    )
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])

    assert seen["index"] == "/staff-7f3a/"
    assert seen["overview"] == "/staff-7f3a/back-office/overview/"
    assert seen["moved_login"] == [200, ""]
    assert seen["moved_index"] == [302, "/staff-7f3a/login/?next=/staff-7f3a/"]
    assert seen["moved_back_office"][0] == 302 and seen["moved_back_office"][1].startswith("/staff-7f3a/login/")
    assert seen["old_login"][0] == 404
    assert seen["old_index"][0] == 404
    assert seen["old_back_office"][0] == 404


def test_the_default_is_admin(settings):
    assert settings.ADMIN_URL == "admin/"
    assert reverse("admin:index") == "/admin/"


def test_no_code_or_template_hard_codes_the_admin_path():
    # Tests may use the literal default path; everything that runs in production must use reverse() / {% url %}.
    sources = [
        path
        for folder in ("accounts", "commissions", "config", "payouts", "referrals", "shops", "staff", "templates")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in (".py", ".html", ".txt") and "migrations" not in path.parts
    ]
    hard_coded = [str(path.relative_to(ROOT)) for path in sources if re.search(r"['\"`(]/admin/", path.read_text())]

    assert hard_coded == []
