import pytest
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.test import RequestFactory

from core.admin_tools import ViewOnlyAdmin, for_each_row


class Refused(ValidationError):
    pass


class Recorder:
    def __init__(self):
        self.messages = []

    def message_user(self, request, message, level):
        self.messages.append((level, message))


def test_each_row_is_tried_and_a_refusal_is_reported_for_its_row_only():
    recorder, done = Recorder(), []

    def service(row):
        if row == "b":
            raise Refused(["Not now.", "Later."])
        done.append(row)

    count = for_each_row(recorder, None, ["a", "b", "c"], service, lambda n: f"{n} done.", refusal=Refused)

    assert (count, done) == (2, ["a", "c"])
    assert recorder.messages == [(messages.ERROR, "b: Not now. Later."), (messages.SUCCESS, "2 done.")]


def test_nothing_done_sends_no_success_message_and_other_errors_are_not_swallowed():
    recorder = Recorder()

    def refuse(row):
        raise Refused("No.")

    assert for_each_row(recorder, None, ["a"], refuse, lambda n: "done", refusal=Refused) == 0
    assert recorder.messages == [(messages.ERROR, "a: No.")]

    def broken(row):
        raise ValidationError("a plain one")

    with pytest.raises(ValidationError, match="a plain one"):
        for_each_row(recorder, None, ["a"], broken, lambda n: "done", refusal=Refused)


def test_a_view_only_admin_lets_nobody_add_change_or_delete(db):
    superuser = get_user_model().objects.create_superuser(email="root@example.com", password="x")
    request = RequestFactory().get("/")
    request.user = superuser
    model_admin = ViewOnlyAdmin(get_user_model(), admin.site)

    assert model_admin.has_view_permission(request) is True
    assert (model_admin.has_add_permission(request), model_admin.has_change_permission(request)) == (False, False)
    assert model_admin.has_delete_permission(request, superuser) is False
