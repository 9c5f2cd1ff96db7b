"""CSV headers in the reader's language (issue #23): the audit log, the compliance report and the member's statement
name their columns in the language of the request; the values stay machine-readable (codes, ISO dates, plain
decimals) and the compliance report's section keys (first column) stay English for scripts. The payout batch file
keeps its fixed bilingual header: it is the bank's and Alipay's import format (tests/payouts)."""

import csv
import io

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import gettext

from tests.members.test_payout_pages import STATEMENT_CSV, _csv_rows, member, member_client  # noqa: F401
from tests.staff.test_audit import AUDIT, auditor, history  # noqa: F401 - fixtures
from tests.staff.test_compliance_report import CSV_URL, params, world  # noqa: F401 - fixtures

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _language_restored():
    """A request with Accept-Language: zh activates Chinese for the thread, and nothing deactivates it: put back the
    language active before, so later tests do not run in Chinese."""
    language = translation.get_language()
    yield
    translation.activate(language)


ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-CN,zh;q=0.9"}
AUDIT_COLUMNS = ("time", "kind", "actor", "object type", "object id", "object", "amount", "detail")
STATEMENT_COLUMNS = ("date", "description", "amount", "balance", "tax_withheld", "net_paid")


def in_chinese(*words: str) -> list[str]:
    with translation.override("zh-hans"):
        return [gettext(word) for word in words]


def test_the_audit_csv_header_is_in_the_staff_members_language(auditor, client, history):  # noqa: F811
    chinese = client.get(AUDIT, {"format": "csv"}, **ZH)
    english = client.get(AUDIT, {"format": "csv"}, HTTP_ACCEPT_LANGUAGE="en")

    chinese_rows = list(csv.reader(io.StringIO(b"".join(chinese.streaming_content).decode())))
    english_rows = list(csv.reader(io.StringIO(b"".join(english.streaming_content).decode())))
    assert chinese_rows[0] == in_chinese(*AUDIT_COLUMNS)
    assert {"时间", "类型", "操作人", "金额", "详情"} <= set(chinese_rows[0])
    assert english_rows[0] == list(AUDIT_COLUMNS)
    # the rows are the log's codes in either language
    assert [row[1] for row in chinese_rows[1:]] == [row[1] for row in english_rows[1:]]


def test_the_statement_csv_header_is_in_the_members_language(member_client):  # noqa: F811
    chinese = _csv_rows(member_client.get(STATEMENT_CSV, **ZH))
    english = _csv_rows(member_client.get(STATEMENT_CSV, HTTP_ACCEPT_LANGUAGE="en"))

    assert chinese == [in_chinese(*STATEMENT_COLUMNS)]
    assert {"描述", "金额"} <= set(chinese[0])
    assert english == [list(STATEMENT_COLUMNS)]


def test_the_compliance_csv_headers_are_chinese_and_its_section_keys_stay_english(client, staff_user, world):  # noqa: F811
    client.force_login(staff_user)

    response = client.get(reverse(CSV_URL), params(world), **ZH)

    rows = list(csv.reader(io.StringIO(response.content.decode())))
    summary = [row for row in rows if row[0] == "summary"]
    assert summary[0] == ["summary", "指标", "数值"]
    assert {row[1]: row[2] for row in summary[1:]}["净销售额"] == "179.60"
    plans = [row for row in rows if row[0] == "plan_versions"]
    assert plans[0][1:3] == ["版本", "名称"]
    # the plan's name in Chinese too, not only the headers
    # the plan's name in Chinese too; a plan named only in English shows its English name
    assert [row[2] for row in plans[1:]] == ["默认：分享者得 80%，其上级得 20%", "Generous"]
