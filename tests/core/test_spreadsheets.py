import pytest

from core.spreadsheets import spreadsheet_safe


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
    ],
)
def test_text_that_a_spreadsheet_would_run_gets_an_apostrophe(value, cell):
    assert spreadsheet_safe(value) == cell


@pytest.mark.parametrize("value", ["Ann Lee", "+86 138 0000 0000", "-12", "", "a=b", "李雷"])
def test_other_text_stays_as_typed(value):
    assert spreadsheet_safe(value) == value


def test_anything_is_written_as_text():
    assert spreadsheet_safe(12) == "12"
