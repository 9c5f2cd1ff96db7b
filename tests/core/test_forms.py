from decimal import Decimal

import pytest
from django import forms
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError

from core.forms import add_service_errors, rate_field


class NameForm(forms.Form):
    name = forms.CharField()
    email = forms.EmailField(required=False)


def _bound_form() -> NameForm:
    form = NameForm({"name": "Ann", "email": ""})
    assert form.is_valid()
    return form


def test_a_message_for_a_field_of_the_form_goes_beside_that_field():
    form = _bound_form()

    add_service_errors(form, ValidationError({"name": ["Taken."]}))

    assert form.errors == {"name": ["Taken."]}
    assert "name" not in form.cleaned_data


def test_messages_for_names_the_form_does_not_have_go_to_the_top_and_the_others_stay_beside_their_fields():
    form = _bound_form()

    add_service_errors(
        form, ValidationError({"name": ["Taken."], "slug": ["Bad address."], NON_FIELD_ERRORS: ["Refused."]})
    )

    assert form.errors == {"name": ["Taken."], NON_FIELD_ERRORS: ["Bad address.", "Refused."]}


def test_a_refusal_that_names_no_field_goes_to_the_top_with_its_parameters_filled_in():
    form = _bound_form()

    add_service_errors(form, ValidationError("At most %(count)d.", params={"count": 3}))

    assert form.errors == {NON_FIELD_ERRORS: ["At most 3."]}
    assert form.non_field_errors() == ["At most 3."]


def test_a_refusal_that_names_no_field_can_be_put_on_a_chosen_field():
    form = _bound_form()

    add_service_errors(form, ValidationError(["Not active.", "No shop."]), field="email")

    assert form.errors == {"email": ["Not active.", "No shop."]}


def test_the_rate_field_takes_four_places_between_0_and_1():
    field = rate_field("Rate", required=False)

    assert field.clean("0.1250") == Decimal("0.1250")
    assert field.clean("1") == Decimal("1")
    assert field.clean("") is None


@pytest.mark.parametrize("value", ["1.0001", "-0.0001", "0.12345", "abc"])
def test_the_rate_field_refuses_what_is_not_a_rate(value):
    with pytest.raises(ValidationError):
        rate_field("Rate").clean(value)
