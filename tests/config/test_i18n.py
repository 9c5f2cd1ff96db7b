"""Translations and locale formats: the committed zh_Hans catalogue is complete and compiled, the language is
chosen per request and switchable, and amounts and dates follow the language (currency from settings)."""

import ast
import gettext
import re
import shutil
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation

from core.money import format_money
from payouts.services import withdrawal_request
from tests.factories import MemberFactory, ProductFactory, shop_with_products
from tests.payouts.helpers import bank_account, credit

LOCALE = Path(settings.BASE_DIR) / "locale"
ZH_PO = LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.po"
ZH_MO = LOCALE / "zh_Hans" / "LC_MESSAGES" / "django.mo"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdf]|%[sdf]|\{\w+\}")
LATIN_ONLY = re.compile(r"^[\x00-\x7f]*$")


@dataclass
class PoEntry:
    msgid: str = ""
    msgctxt: str | None = None
    msgid_plural: str | None = None
    msgstrs: list[str] = field(default_factory=list)
    flags: set[str] = field(default_factory=set)
    line: int = 0


def parse_po(path: Path) -> tuple[PoEntry, list[PoEntry]]:
    """(header, entries) of a .po file; obsolete (#~) entries are skipped. Enough of the format for our files."""
    entries, entry, current = [], PoEntry(), None

    def finish():
        nonlocal entry, current
        if current is not None:
            entries.append(entry)
        entry, current = PoEntry(), None

    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line:
            finish()
        elif line.startswith("#,"):
            entry.flags |= {flag.strip() for flag in line[2:].split(",")}
        elif line.startswith("#"):
            continue
        else:
            keyword, _space, rest = line.partition(" ")
            if line.startswith('"'):
                value, keyword = ast.literal_eval(line), None
            else:
                value = ast.literal_eval(rest)
            if keyword == "msgid":
                current, entry.msgid, entry.line = "msgid", value, number
            elif keyword == "msgid_plural":
                current, entry.msgid_plural = "msgid_plural", value
            elif keyword is not None and keyword.startswith("msgstr"):
                current = "msgstr"
                entry.msgstrs.append(value)
            elif keyword == "msgctxt":
                current, entry.msgctxt = "msgctxt", value
            elif current == "msgctxt":
                entry.msgctxt += value
            elif current == "msgid":
                entry.msgid += value
            elif current == "msgid_plural":
                entry.msgid_plural += value
            elif current == "msgstr":
                entry.msgstrs[-1] += value
    finish()
    assert entries and entries[0].msgid == "", f"{path} has no header"
    return entries[0], entries[1:]


# --- the catalogue ---------------------------------------------------------------------------------------------


def test_every_zh_hans_message_is_translated_and_none_is_fuzzy():
    header, entries = parse_po(ZH_PO)

    assert len(entries) > 500  # the whole site, not a stub
    assert "fuzzy" not in header.flags
    assert "Plural-Forms: nplurals=1; plural=0;" in header.msgstrs[0]
    untranslated = [(entry.line, entry.msgid) for entry in entries if not all(s.strip() for s in entry.msgstrs)]
    fuzzy = [(entry.line, entry.msgid) for entry in entries if "fuzzy" in entry.flags]
    assert untranslated == []
    assert fuzzy == []
    plurals = [entry for entry in entries if entry.msgid_plural is not None]
    assert plurals and all(len(entry.msgstrs) == 1 for entry in plurals)  # Chinese has one plural form


def test_every_message_in_the_code_is_in_the_catalogue(tmp_path, monkeypatch, settings):
    """makemessages over the code and templates finds no message the committed catalogue lacks (a new string left
    untranslated would show in English on a Chinese page).

    It runs in a folder of links to the project's code, so it never writes the committed catalogue: makemessages
    writes to any `locale` folder it meets under the folder it runs in."""
    from django.core.management import call_command

    if shutil.which("xgettext") is None:
        pytest.skip("needs GNU gettext's xgettext (apt-get install gettext) to extract messages")
    base = Path(settings.BASE_DIR)
    work = tmp_path / "code"
    work.mkdir()
    for entry in base.iterdir():
        if (entry.is_dir() and (entry / "__init__.py").exists()) or entry.name == "templates":
            (work / entry.name).symlink_to(entry, target_is_directory=True)
    copy = tmp_path / "catalogue" / "zh_Hans" / "LC_MESSAGES" / "django.po"
    copy.parent.mkdir(parents=True)
    shutil.copy(ZH_PO, copy)
    before = ZH_PO.read_bytes()
    settings.LOCALE_PATHS = [str(copy.parents[2])]
    monkeypatch.chdir(work)
    call_command(
        "makemessages",
        locale=["zh_Hans"],
        ignore_patterns=["tests", "bench"],
        symlinks=True,
        no_obsolete=True,
        verbosity=0,
    )

    def keys(path):
        return {(entry.msgctxt, entry.msgid) for entry in parse_po(path)[1]}

    assert ZH_PO.read_bytes() == before
    assert len(keys(copy)) > 500  # it read the code
    missing = sorted(keys(copy) - keys(ZH_PO), key=str)
    assert missing == [], f"run makemessages and translate these (see the README): {missing}"


def test_zh_hans_translations_keep_their_placeholders_and_are_chinese():
    _header, entries = parse_po(ZH_PO)

    broken = []
    for entry in entries:
        expected = sorted(set(PLACEHOLDER.findall(entry.msgid)))
        for msgstr in entry.msgstrs:
            if sorted(set(PLACEHOLDER.findall(msgstr))) != expected:
                broken.append((entry.line, entry.msgid, msgstr))
    assert broken == []
    # A msgstr copied from the English source is not a translation.
    copied = [(e.line, e.msgid) for e in entries if any(s == e.msgid and LATIN_ONLY.match(s) for s in e.msgstrs)]
    assert copied == []


def test_the_committed_mo_matches_the_po():
    # Compare contents, not mtimes: a clean clone gives both files the checkout time.
    _header, entries = parse_po(ZH_PO)
    with ZH_MO.open("rb") as compiled:
        catalog = gettext.GNUTranslations(compiled)

    stale = []
    for entry in entries:
        if entry.msgctxt is not None:
            if catalog.pgettext(entry.msgctxt, entry.msgid) != entry.msgstrs[0]:
                stale.append(entry.msgid)
        elif entry.msgid_plural is None:
            if catalog.gettext(entry.msgid) != entry.msgstrs[0]:
                stale.append(entry.msgid)
        elif catalog.ngettext(entry.msgid, entry.msgid_plural, 2) != entry.msgstrs[0]:
            stale.append(entry.msgid)
    assert stale == []
    assert catalog.gettext("Log in") == "登录"
    assert catalog.gettext("Payout account") == "收款账户"


def test_django_translates_with_the_committed_catalogue():
    with translation.override("zh-hans"):
        assert translation.gettext("Open your free micro-shop") == "免费开通您的微店"
        assert translation.ngettext("%(stock)s left", "%(stock)s left", 3) % {"stock": 3} == "仅剩 3 件"
        # one English word, two meanings: a buyer's name and the amount withdrawn have contexts of their own
        assert translation.pgettext("a person's name", "Name") == "姓名"
        assert translation.pgettext("balance", "Paid out") == "已提现"
    with translation.override("en"):
        assert translation.gettext("Open your free micro-shop") == "Open your free micro-shop"


# --- choosing and switching the language -----------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["home", "login"])
def test_a_chinese_browser_gets_chinese_pages(client, url_name):
    response = client.get(reverse(url_name), HTTP_ACCEPT_LANGUAGE="zh-CN,zh;q=0.9,en;q=0.5")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="zh-hans">' in html
    assert "登录" in html  # header link
    assert "Log in" not in html


@pytest.mark.django_db
@pytest.mark.parametrize("url_name", ["home", "login"])
def test_the_language_cookie_chooses_the_language(client, url_name):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "zh-hans"

    html = client.get(reverse(url_name), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="zh-hans">' in html
    assert "登录" in html


@pytest.mark.django_db
def test_the_home_page_is_english_by_default(client):
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="en">' in html
    assert "Open your free micro-shop" in html
    assert "免费开通您的微店" not in html


@pytest.mark.django_db
def test_the_chinese_home_page_is_translated(client):
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()

    assert "免费开通您的微店" in html
    assert "立即加入" in html
    assert "Open your free micro-shop" not in html


@pytest.mark.django_db
def test_every_page_has_a_language_switcher_without_script(client):
    html = client.get(reverse("home") + "?from=poster", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # The header's menu (the footer holds the same form for phones, with its own select id).
    form = re.search(r'<form class="language header-language" method="post" action="([^"]+)">(.*?)</form>', html, re.S)
    assert form is not None
    assert form.group(1) == reverse("set_language")
    body = form.group(2)
    assert 'name="csrfmiddlewaretoken"' in body
    assert '<input type="hidden" name="next" value="/?from=poster">' in body
    assert '<label class="visually-hidden" for="language-select">Language</label>' in body
    assert '<select id="language-select" name="language">' in body
    assert '<option value="en" lang="en" selected>English</option>' in body
    assert '<option value="zh-hans" lang="zh-hans">简体中文</option>' in body
    assert '<button class="secondary" type="submit">' in body  # works without script; site.js submits on change
    assert '<select id="footer-language-select" name="language">' in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/static/js/site.js" defer>']  # nothing inline


@pytest.mark.django_db
def test_posting_to_set_language_switches_the_language(client):
    # given: an English visitor
    assert '<html lang="en">' in client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    # when
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": reverse("login")})

    # then: back where they were, in Chinese from now on
    assert response.status_code == 302
    assert response["Location"] == reverse("login")
    assert client.cookies[settings.LANGUAGE_COOKIE_NAME].value == "zh-hans"
    html = client.get(reverse("home"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="zh-hans">' in html
    assert "免费开通您的微店" in html

    # and back again
    client.post(reverse("set_language"), {"language": "en", "next": "/"})
    assert '<html lang="en">' in client.get(reverse("home")).content.decode()


@pytest.mark.django_db
def test_set_language_refuses_a_foreign_next_url(client):
    response = client.post(reverse("set_language"), {"language": "zh-hans", "next": "https://evil.example/"})

    assert response.status_code == 302
    assert response["Location"] == "/"


# --- amounts and dates -----------------------------------------------------------------------------------------


def test_amounts_carry_the_currency_symbol_and_the_languages_separators():
    with translation.override("en"):
        assert format_money(Decimal("1234.5")) == "¥1,234.50"
        assert format_money(Decimal("-12.3")) == "-¥12.30"
        assert format_money(Decimal("0")) == "¥0.00"
        assert format_money(None) == ""
    with translation.override("zh-hans"):
        assert format_money(Decimal("1234.5")) == "¥1234.50"  # Chinese groups no thousands


def test_the_currency_comes_from_settings(settings):
    settings.CURRENCY = "USD"
    with translation.override("en"):
        assert format_money(Decimal("1234.5")) == "$1,234.50"
    settings.CURRENCY = "SGD"  # no symbol known: the code
    with translation.override("en"):
        assert format_money(Decimal("5")) == "SGD 5.00"


def test_the_money_filter_renders_the_symbol():
    template = Template("{% load money %}{{ amount|money }}")

    with translation.override("en"):
        assert template.render(Context({"amount": Decimal("19.9")})) == "¥19.90"


@pytest.mark.django_db
def test_a_shop_page_shows_prices_in_the_visitors_format(client):
    shop = shop_with_products(ProductFactory(price=Decimal("1234.50")))
    url = reverse("shops:shop_home", args=[shop.slug])

    assert "¥1,234.50" in client.get(url, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "¥1234.50" in client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()


@pytest.mark.django_db
def test_withdrawal_dates_use_the_languages_date_format(client):
    member = MemberFactory()
    credit(member, "100.00")
    bank_account(member)
    withdrawal = withdrawal_request(member=member, amount=Decimal("50.00"))
    moment = timezone.make_aware(datetime(2025, 3, 7, 9, 5))
    type(withdrawal).objects.filter(pk=withdrawal.pk).update(requested_at=moment)
    client.force_login(member.user)

    chinese = client.get(reverse("members:payouts"), HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
    english = client.get(reverse("members:payouts"), HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert f"编号 {withdrawal.pk}，申请于 2025年3月7日 09:05" in chinese
    assert "¥50.00" in chinese
    assert f"No. {withdrawal.pk}, requested 03/07/2025 9:05 a.m." in english
