"""Identity document numbers and the unified social credit code, checked as their standards define them.

Pure functions, no database: the member's identity form, the services and the tests all call these.

- Resident ID card (居民身份证), GB 11643-1999: 17 digits (6 region, 8 birth date YYYYMMDD, 3 sequence) and a check
  character computed by ISO 7064 MOD 11-2: the weights are 2^(17-i) mod 11, the check is (12 - sum mod 11) mod 11,
  written `X` for 10.
- Hong Kong / Macau and Taiwan residents: their residence permit (港澳台居民居住证) has the same 18-character form and
  check character with region code 810000 (Hong Kong), 820000 (Macau) or 830000 (Taiwan); their mainland travel
  permit (港澳居民来往内地通行证 `H`/`M` + 8 digits, older cards 10; 台湾居民来往大陆通行证 8 digits, older 10) has no
  check character, so only its form is checked.
- Foreign permanent resident ID (外国人永久居留身份证): the 2023 card has 18 characters starting with `9` and the
  GB 11643 check character; the 2017 card 15 characters (3 letters of nationality, 12 digits).
- Passport: 5 to 17 letters and digits (ICAO 9303 leaves the form to the issuer).
- Unified social credit code (统一社会信用代码), GB 32100-2015: 18 characters of the 31 allowed (digits and
  capital letters without I, O, Z, S, V); the check character is 31 - (weighted sum mod 31), weights 3^i mod 31.
"""

import re
from dataclasses import dataclass
from datetime import date

RESIDENT_ID = "resident_id"
HK_MACAU_PERMIT = "hk_macau_permit"
TAIWAN_PERMIT = "taiwan_permit"
PASSPORT = "passport"
FOREIGN_PERMANENT = "foreign_permanent"

_WEIGHTS = tuple(pow(2, 17 - i, 11) for i in range(17))
_CHECK = "10X98765432"
# The provinces and equivalents a mainland resident ID's first two digits may name (GB/T 2260).
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46, 50, 51, 52, 53, 54, 61, 62,
     63, 64, 65}
)  # fmt: skip
OLDEST_AGE = 120

_USCC_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
_USCC_WEIGHTS = tuple(pow(3, i, 31) for i in range(17))


class IdNumberError(ValueError):
    """The number is not valid for its type; the message says why, fit to show (English, translated by callers)."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class IdNumber:
    id_type: str
    number: str  # normalised: upper case, no spaces
    birth_date: date | None = None


def gb11643_check_char(first17: str) -> str:
    """The ISO 7064 MOD 11-2 check character of 17 digits."""
    total = sum(int(digit) * weight for digit, weight in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def _eighteen(number: str, *, today: date) -> date:
    """Check an 18-character GB 11643 number (form, check character, birth date) and return the birth date."""
    if not re.fullmatch(r"\d{17}[\dX]", number):
        raise IdNumberError("An ID card number has 17 digits and a last digit or X.", code="format")
    if gb11643_check_char(number[:17]) != number[17]:
        raise IdNumberError("This ID card number's check digit is wrong: look for a mistyped digit.", code="check")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise IdNumberError("The birth date in this ID card number does not exist.", code="birth_date") from None
    if born > today or today.year - born.year > OLDEST_AGE:
        raise IdNumberError("The birth date in this ID card number is not plausible.", code="birth_date")
    return born


def normalise(number: str) -> str:
    return re.sub(r"[\s-]", "", number or "").upper()


def id_number_check(id_type: str, number: str, *, today: date | None = None) -> IdNumber:
    """The normalised number of an ID of `id_type`, or IdNumberError saying what is wrong."""
    today = today or date.today()
    number = normalise(number)
    if not number:
        raise IdNumberError("Enter the ID number.", code="required")
    if id_type == RESIDENT_ID:
        born = _eighteen(number, today=today)
        if int(number[:2]) not in _PROVINCES:
            raise IdNumberError("This ID card number's region code does not exist.", code="region")
        return IdNumber(id_type, number, born)
    if id_type in (HK_MACAU_PERMIT, TAIWAN_PERMIT):
        regions = ("810000", "820000") if id_type == HK_MACAU_PERMIT else ("830000",)
        if len(number) == 18:
            if not number.startswith(regions):
                raise IdNumberError("This residence permit number's region code does not match.", code="region")
            return IdNumber(id_type, number, _eighteen(number, today=today))
        form = r"[HM]\d{8}(\d{2})?" if id_type == HK_MACAU_PERMIT else r"\d{8}(\d{2})?"
        if not re.fullmatch(form, number):
            raise IdNumberError("This is not the form of a residence or travel permit number.", code="format")
        return IdNumber(id_type, number)
    if id_type == FOREIGN_PERMANENT:
        if len(number) == 18:
            if not number.startswith("9"):
                raise IdNumberError("A foreign permanent resident ID of 18 characters starts with 9.", code="format")
            return IdNumber(id_type, number, _eighteen(number, today=today))
        if not re.fullmatch(r"[A-Z]{3}\d{12}", number):
            raise IdNumberError("This is not the form of a foreign permanent resident ID number.", code="format")
        return IdNumber(id_type, number)
    if id_type == PASSPORT:
        if not re.fullmatch(r"[A-Z0-9]{5,17}", number) or not re.search(r"\d", number):
            raise IdNumberError("A passport number has 5 to 17 letters and digits.", code="format")
        return IdNumber(id_type, number)
    raise IdNumberError("Choose the type of ID.", code="type")


def gb32100_check_char(first17: str) -> str:
    total = sum(_USCC_CHARS.index(char) * weight for char, weight in zip(first17, _USCC_WEIGHTS, strict=True))
    return _USCC_CHARS[(31 - total % 31) % 31]


def credit_code_check(code: str) -> str:
    """The normalised unified social credit code, or IdNumberError."""
    code = normalise(code)
    if len(code) != 18 or any(char not in _USCC_CHARS for char in code) or not code[8:17].isalnum():
        raise IdNumberError(
            "A unified social credit code has 18 digits and capital letters (no I, O, S, V or Z).", code="format"
        )
    if gb32100_check_char(code[:17]) != code[17]:
        raise IdNumberError("This credit code's check character is wrong: look for a mistyped character.", code="check")
    return code


def mask_id_number(number: str) -> str:
    """`110105194912310021` → `110***********0021`: the first three and last four characters, as banks show an ID.
    Short numbers (passports, permits) keep their first and last two."""
    number = number or ""
    if len(number) >= 15:
        return number[:3] + "*" * (len(number) - 7) + number[-4:]
    if len(number) > 4:
        return number[:2] + "*" * (len(number) - 4) + number[-2:]
    return "*" * len(number)


def mask_legal_name(name: str) -> str:
    """`张三` → `张*`, `欧阳娜娜` → `欧***`, `Wang Fang` → `W********`: the first character, the rest starred, so
    the length shows as on Alipay's and banks' pages."""
    name = (name or "").strip()
    return name[:1] + "*" * (len(name) - 1) if name else ""
