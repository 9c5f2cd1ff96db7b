"""ID numbers checked as their standards define them (GB 11643 for resident IDs and residence permits, GB 32100 for
credit codes), and masked as banks show them."""

from datetime import date

import pytest

from core.id_numbers import (
    FOREIGN_PERMANENT,
    HK_MACAU_PERMIT,
    PASSPORT,
    RESIDENT_ID,
    TAIWAN_PERMIT,
    IdNumberError,
    credit_code_check,
    gb11643_check_char,
    id_number_check,
    mask_id_number,
    mask_legal_name,
)

TODAY = date(2026, 12, 7)


def test_the_check_character_of_the_standards_own_examples():
    # GB 11643-1999's examples: 11010519491231002X and 440524188001010014
    assert gb11643_check_char("11010519491231002") == "X"
    assert gb11643_check_char("44052418800101001") == "4"


@pytest.mark.parametrize(
    "number", ["11010519491231002X", "11010519491231002x", "110105 19491231 002X", "320311198001010013"]
)
def test_a_valid_resident_id_is_accepted_and_normalised(number):
    checked = id_number_check(RESIDENT_ID, number, today=TODAY)
    assert checked.number == number.upper().replace(" ", "")
    assert checked.birth_date is not None


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("110105194912310021", "check"),  # last digit should be X
        ("11010519491231002", "format"),  # 17 characters
        ("1101051949123100XX", "format"),
        ("11010519491331002X", "check"),  # month 13 (and so a wrong check digit too)
        ("", "required"),
    ],
)
def test_an_invalid_resident_id_is_refused_with_the_reason(number, code):
    with pytest.raises(IdNumberError) as refused:
        id_number_check(RESIDENT_ID, number, today=TODAY)
    assert refused.value.code == code


def _with_check(first17: str) -> str:
    return first17 + gb11643_check_char(first17)


def test_a_birth_date_that_does_not_exist_or_is_implausible_is_refused():
    for first17, why in [
        ("11010519990230001", "30 February"),
        ("11010520300101001", "born in the future"),
        ("44052418800101001", "146 years old"),
    ]:
        with pytest.raises(IdNumberError) as refused:
            id_number_check(RESIDENT_ID, _with_check(first17), today=TODAY)
        assert refused.value.code == "birth_date", why


def test_a_region_code_that_does_not_exist_is_refused():
    with pytest.raises(IdNumberError) as refused:
        id_number_check(RESIDENT_ID, _with_check("99010519900101001"), today=TODAY)
    assert refused.value.code == "region"


def test_other_id_types():
    # residence permits: 18 characters with the GB 11643 check and their region code; travel permits by form
    assert id_number_check(HK_MACAU_PERMIT, _with_check("81000019900101001"), today=TODAY).birth_date == date(
        1990, 1, 1
    )
    assert id_number_check(HK_MACAU_PERMIT, "h12345678", today=TODAY).number == "H12345678"
    assert id_number_check(HK_MACAU_PERMIT, "M1234567801", today=TODAY).number == "M1234567801"
    assert id_number_check(TAIWAN_PERMIT, _with_check("83000019900101001"), today=TODAY).number.startswith("830000")
    assert id_number_check(TAIWAN_PERMIT, "12345678", today=TODAY).number == "12345678"
    assert id_number_check(PASSPORT, "e12345678", today=TODAY).number == "E12345678"
    assert id_number_check(FOREIGN_PERMANENT, "usa123456789012", today=TODAY).number == "USA123456789012"
    assert id_number_check(FOREIGN_PERMANENT, _with_check("93384019900101001"), today=TODAY).number[0] == "9"
    refusals = [
        (HK_MACAU_PERMIT, _with_check("83000019900101001"), "region"),  # a Taiwan permit number
        (HK_MACAU_PERMIT, "X12345678", "format"),
        (TAIWAN_PERMIT, _with_check("81000019900101001"), "region"),
        (TAIWAN_PERMIT, "1234567", "format"),
        (HK_MACAU_PERMIT, _with_check("81000019900101001")[:-1] + "0", "check"),
        (PASSPORT, "ABCDEFG", "format"),  # no digit
        (PASSPORT, "E1234", "format"),  # too short? 5 characters pass; see below
        (FOREIGN_PERMANENT, _with_check("11010519900101001"), "format"),  # 18 characters not starting with 9
        (FOREIGN_PERMANENT, "US1234567890123", "format"),
        ("driving_licence", "123456", "type"),
    ]
    for id_type, number, code in refusals:
        if (id_type, number) == (PASSPORT, "E1234"):
            assert id_number_check(id_type, number, today=TODAY).number == "E1234"
            continue
        with pytest.raises(IdNumberError) as refused:
            id_number_check(id_type, number, today=TODAY)
        assert refused.value.code == code, (id_type, number)


def test_the_unified_social_credit_code_check_character():
    assert credit_code_check("91350100M000100Y43") == "91350100M000100Y43"
    assert credit_code_check(" 91350100m000100y43 ") == "91350100M000100Y43"
    for code, why in [
        ("91350100M000100Y44", "check"),
        ("91350100M000100Y4", "format"),
        ("91350100M000I00Y43", "format"),  # I is not among the 31 characters
    ]:
        with pytest.raises(IdNumberError) as refused:
            credit_code_check(code)
        assert refused.value.code == why, code


def test_masking():
    assert mask_id_number("110105194912311234") == "110***********1234"
    assert mask_id_number("E12345678") == "E1*****78"
    assert mask_id_number("") == ""
    assert mask_legal_name("张三") == "张*"
    assert mask_legal_name("欧阳娜娜") == "欧***"
    assert mask_legal_name("") == ""
