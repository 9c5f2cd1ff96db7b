"""The style page (/styleguide/): every component, for staff only."""

import pytest
from django.urls import reverse

from core.icons import ICONS
from tests.factories import MemberFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_a_visitor_is_asked_to_log_in(client):
    response = client.get(reverse("styleguide"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


def test_a_member_who_is_not_staff_gets_a_404(client):
    member = MemberFactory()
    client.force_login(member.user)
    assert client.get(reverse("styleguide")).status_code == 404


def test_staff_see_every_component(client):
    client.force_login(UserFactory(is_staff=True))
    response = client.get(reverse("styleguide"), {"toast": 1})
    assert response.status_code == 200
    html = response.content.decode()
    for component in (
        'class="button',
        'class="card',
        'class="table stack"',
        'class="badge',
        'class="tabs"',
        'class="empty"',
        'class="messages"',
        'class="product-card"',
        'class="steps"',
        'class="stats',
    ):
        assert component in html, component
    assert html.count("sprite.svg#") >= len(ICONS)
    # The sample form is bound with errors: the error sits beside its field, and the field says it is invalid.
    assert 'class="field has-error"' in html and 'aria-invalid="true"' in html
    assert "¥2,655.30" in html and "-¥94.33" in html
