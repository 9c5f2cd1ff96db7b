from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from referrals.models import Member
from referrals.selectors import tree_check

pytestmark = pytest.mark.django_db


def test_demo_builds_a_deep_tree_and_is_idempotent():
    first, second = StringIO(), StringIO()

    call_command("demo", stdout=first)
    counts = (get_user_model().objects.count(), Member.objects.count())
    call_command("demo", stdout=second)

    assert counts == (get_user_model().objects.count(), Member.objects.count())
    assert counts == (32, 31)
    assert Member.objects.filter(level=3).count() == 18
    assert tree_check().is_valid
    assert "admin@example.com" in first.getvalue()
    assert "(0 new members)" in second.getvalue()
