from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers

from core.api import money_field, rate_field, service_error
from core.money import MONEY_MAX_DIGITS, MoneyField


def test_the_api_money_field_has_as_many_digits_as_the_database():
    field = money_field()

    assert (field.max_digits, field.decimal_places, field.read_only) == (MoneyField().max_digits, 2, True)
    assert MONEY_MAX_DIGITS == 14
    assert field.to_representation(Decimal("999999999999.99")) == "999999999999.99"
    assert field.to_representation(Decimal("-12.5")) == "-12.50"


def test_an_input_money_field_takes_what_the_database_stores_and_refuses_more():
    field = money_field(read_only=False)

    assert field.to_internal_value("999999999999.99") == Decimal("999999999999.99")
    for refused in ("1000000000000.00", "1.001"):
        with pytest.raises(serializers.ValidationError):
            field.to_internal_value(refused)


def test_the_schema_of_a_money_field_allows_twelve_digits_before_the_point():
    class Amounts(serializers.Serializer):
        amount = money_field()
        rate = rate_field()

    schema = AutoSchema()._map_serializer_field(Amounts().fields["amount"], "response")
    rate = AutoSchema()._map_serializer_field(Amounts().fields["rate"], "response")

    assert schema["pattern"] == r"^-?\d{0,12}(?:\.\d{0,2})?$"
    assert rate["pattern"] == r"^-?\d{0,1}(?:\.\d{0,4})?$"


def test_a_service_refusal_keeps_its_first_message_and_its_code():
    error = service_error(ValidationError("Too many.", code="limit"))

    assert (error.status_code, error.api_code, str(error.detail), error.fields) == (400, "limit", "Too many.", {})


def test_a_service_refusal_that_names_fields_keeps_them():
    error = service_error(ValidationError({"slug": ["Taken."], "name": ["Empty.", "Short."]}, code="ignored"))

    assert (error.api_code, str(error.detail)) == ("invalid", "Taken.")
    assert error.fields == {"slug": ["Taken."], "name": ["Empty.", "Short."]}


def test_a_list_of_refusals_answers_with_the_first_code_it_has():
    error = service_error(ValidationError([ValidationError("One."), ValidationError("Two.", code="two")]))

    assert (error.api_code, str(error.detail)) == ("two", "One.")
