"""CSV files that staff open in a spreadsheet: text from members must never run there as a formula."""


def spreadsheet_safe(value) -> str:
    """`value` as text that Excel, WPS or LibreOffice show as typed, never run as a formula (CSV injection).

    A cell starting with `=`, `@`, a tab or a carriage return, or with `+` or `-` followed by anything but a number
    (a phone number such as +86 138 0000 0000 stays as it is), gets a leading apostrophe.
    """
    value = str(value)
    if value[:1] in ("=", "@", "\t", "\r") or (value[:1] in ("+", "-") and not value[1:].replace(" ", "").isdigit()):
        return "'" + value
    return value
