"""Report-file imports are bounded and run as a Celery task with progress (issue #19, items 5 and 7).

Before: the admin upload parsed the file in the request. A 530 KB zip bomb cost 29 s and 462 MB, a 5M-cell file
was killed by gunicorn's timeout, and a damaged XLSX answered 500. Now the upload only checks the zip's directory,
stores the file and queues the task; the task reads it within bounds (file size, unpacked size, rows, cells) and
records every line or none; each import's page shows how far it is.
"""

import io
import struct
import zipfile
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone
from openpyxl import Workbook

from networks import services as network_services
from networks.imports import ImportRefused, parse_report_file
from networks.models import ExternalOrder, ExternalOrderEvent, Network, ReportImport
from networks.selectors import report_import_progress
from networks.services import report_import_create, report_import_run
from networks.tasks import report_import_run_task
from staff.groups import FINANCE
from tests.config.test_celery_broker import celery_worker  # noqa: F401 - the fixture
from tests.factories import UserFactory
from tests.networks.test_imports import TAOBAO_HEADER, _taobao_file, _taobao_row
from tests.payouts.test_money import ensure_plan_in_force

UPLOAD = reverse("admin:networks_reportimport_upload")
SHEET = "xl/worksheets/sheet1.xml"
SHEET_OPEN = b'<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main"><sheetData>'
SHEET_CLOSE = b"</sheetData></worksheet>"


@pytest.fixture
def taobao(db):
    ensure_plan_in_force()
    return Network.objects.get_or_create(code="taobao", defaults={"name": "淘宝联盟"})[0]


@pytest.fixture
def finance(client, db):
    call_command("staff_groups", verbosity=0)
    user = UserFactory(is_staff=True)
    user.groups.add(Group.objects.get(name=FINANCE))
    client.force_login(user)
    return user


@pytest.fixture
def queued_only(monkeypatch):
    """The task queue as a broker would be: the upload's message is kept, not run in the request."""
    sent: list[int] = []
    monkeypatch.setattr(report_import_run_task, "delay", lambda import_id: sent.append(import_id))
    return sent


def _taobao_workbook(rows: list[dict], *, width_cell: bool = False) -> bytes:
    workbook = Workbook()
    sheet = workbook.active
    sheet.append(TAOBAO_HEADER)
    for row in rows:
        sheet.append([row.get(name, "") for name in TAOBAO_HEADER])
    if width_cell:
        sheet.cell(row=1, column=16384, value="x")  # column XFD: every row is read 16,384 cells wide
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _rows(count: int) -> list[dict]:
    return [_taobao_row(**{"淘宝子订单编号": str(10**17 + number)}) for number in range(count)]


def _with_sheet(workbook: bytes, write_sheet) -> bytes:
    """The workbook with its first sheet's XML replaced by what `write_sheet(stream)` writes."""
    source = zipfile.ZipFile(io.BytesIO(workbook))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for info in source.infolist():
            if info.filename == SHEET:
                with target.open(SHEET, "w", force_zip64=True) as stream:
                    write_sheet(stream)
            else:
                target.writestr(info, source.read(info.filename))
    return buffer.getvalue()


def _zip_bomb(megabytes: int = 300) -> bytes:
    """A real workbook whose sheet is well-formed XML padded with `megabytes` MB of blanks: about 300 KB zipped."""

    def write(stream):
        stream.write(SHEET_OPEN)
        blanks = b" " * (1 << 20)
        for _ in range(megabytes):
            stream.write(blanks)
        stream.write(SHEET_CLOSE)

    return _with_sheet(_taobao_workbook(_rows(1)), write)


def _declare_size(archive: bytes, name: str, size: int) -> bytes:
    """The zip with `name`'s unpacked size rewritten (local header and central directory) as `size`."""
    data = bytearray(archive)
    info = zipfile.ZipFile(io.BytesIO(archive)).getinfo(name)
    struct.pack_into("<I", data, info.header_offset + 22, size)
    position = data.find(b"PK\x01\x02")
    while position != -1:
        name_length = struct.unpack_from("<H", data, position + 28)[0]
        if bytes(data[position + 46 : position + 46 + name_length]) == name.encode():
            struct.pack_into("<I", data, position + 24, size)
        position = data.find(b"PK\x01\x02", position + 4)
    return bytes(data)


def _upload(client, network, name: str, content: bytes, **kwargs):
    upload = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(UPLOAD, {"network": network.pk, "file": upload}, **kwargs)


def test_a_zip_bomb_is_refused_at_the_upload_from_the_zip_directory_alone(client, finance, taobao, monkeypatch):
    # given: 300 MB of XML in a file of about 300 KB
    bomb = _zip_bomb()
    assert len(bomb) < 600_000

    # when it is uploaded, with anything that would unpack it failing the test
    def unpacked(*args, **kwargs):
        raise AssertionError("the upload unpacked the file")

    monkeypatch.setattr(zipfile.ZipFile, "open", unpacked)
    monkeypatch.setattr("openpyxl.load_workbook", unpacked)
    response = _upload(client, taobao, "bomb.xlsx", bomb)

    # then a form error says why, and nothing is stored or imported
    assert response.status_code == 400
    assert "The workbook would unpack to 300 MB, more than the 200 MB an import may" in response.content.decode()
    assert not ReportImport.objects.exists()
    assert not ExternalOrder.objects.exists()


def test_a_bomb_that_lies_about_its_size_is_read_only_as_far_as_it_says_then_refused():
    # the zip's directory says the sheet is 2,000 bytes; its compressed stream holds 300 MB
    liar = _declare_size(_zip_bomb(), SHEET, 2000)

    with pytest.raises(ImportRefused) as refused:
        parse_report_file("taobao", "liar.xlsx", liar)

    assert (refused.value.row_number, refused.value.reason) == (1, "This file is not a readable XLSX workbook.")


def test_a_damaged_xlsx_is_a_clear_admin_error_and_changes_nothing(client, finance, taobao):
    # given: a well-formed zip whose sheet is cut off in the middle of a row
    damaged = _with_sheet(_taobao_workbook(_rows(2)), lambda stream: stream.write(SHEET_OPEN + b'<row r="1"><c r='))

    response = _upload(client, taobao, "damaged.xlsx", damaged, follow=True)

    assert response.status_code == 200
    assert "Nothing imported: row 1: This file is not a readable XLSX workbook." in response.content.decode()
    record = ReportImport.objects.get()
    assert (record.status, record.error, record.rows_done, bytes(record.content)) == (
        "refused", "This file is not a readable XLSX workbook.", 0, b""
    )  # fmt: skip
    assert not ExternalOrder.objects.exists()


def test_a_cell_that_cannot_be_read_is_refused_with_its_row(client, finance, taobao):
    damaged = _with_sheet(
        _taobao_workbook(_rows(1)),
        lambda stream: stream.write(SHEET_OPEN + b'<row r="1"><c r="A1"><v>abc</v></c></row>' + SHEET_CLOSE),
    )

    response = _upload(client, taobao, "damaged.xlsx", damaged, follow=True)

    assert "Nothing imported: row 1: The workbook is damaged here: this row cannot be read." in (
        response.content.decode()
    )
    assert not ExternalOrder.objects.exists()


def test_a_file_that_is_not_a_zip_inside_is_a_form_error(client, finance, taobao):
    response = _upload(client, taobao, "report.xlsx", b"PK\x03\x04 not really a zip")

    assert response.status_code == 400
    assert "This file is not a readable XLSX workbook." in response.content.decode()
    assert not ReportImport.objects.exists()


def test_a_file_over_the_cell_limit_is_refused_with_the_row_where_it_went_over(client, finance, taobao, settings):
    settings.NETWORK_IMPORT_MAX_CELLS = 1000
    content = _taobao_workbook(_rows(60))  # 61 rows of 24 cells

    response = _upload(client, taobao, "wide.xlsx", content, follow=True)

    record = ReportImport.objects.get()
    assert (record.status, record.error_row) == ("refused", 42)  # 42 × 24 = 1,008 cells
    assert "Too many cells: at most 1000 per file" in response.content.decode()
    assert not ExternalOrder.objects.exists()


def test_rows_as_wide_as_excel_allows_meet_the_cell_limit_early(taobao):
    # one cell in column XFD: openpyxl reads every row 16,384 cells wide; the default limit is 3,000,000 cells
    content = _taobao_workbook(_rows(400), width_cell=True)

    with pytest.raises(ImportRefused) as refused:
        parse_report_file("taobao", "wide.xlsx", content)

    assert refused.value.row_number == 184  # 184 × 16,384 = 3,014,656 cells
    assert refused.value.reason.startswith("Too many cells: at most 3000000 per file")


def test_a_file_over_the_row_limit_is_refused(taobao, settings):
    settings.NETWORK_IMPORT_MAX_ROWS = 5

    with pytest.raises(ImportRefused) as refused:
        parse_report_file("taobao", "long.csv", _taobao_file(_rows(6)))

    assert refused.value.reason == "Too many rows: at most 5 per file."


def test_the_upload_only_stores_the_file_and_queues_its_import_which_the_task_then_runs(
    client, finance, taobao, queued_only
):
    # when finance uploads a good file and no worker has taken it yet
    content = _taobao_workbook(_rows(3))
    response = _upload(client, taobao, "2026-01.xlsx", content)

    # then the file is stored and queued, nothing is imported, and its page says it is waiting and refreshes
    record = ReportImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:networks_reportimport_change", args=[record.pk])
    assert queued_only == [record.pk]
    assert (record.status, record.file_size, bytes(record.content)) == ("queued", len(content), content)
    assert not ExternalOrder.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert "Waiting for a worker to start the import." in page
    assert '<meta http-equiv="refresh" content="3">' in page

    # when the worker runs the task
    assert report_import_run_task.apply(args=[record.pk]).get() == "done"

    # then every line is in, the file is dropped, and the page shows it finished and stops refreshing
    record.refresh_from_db()
    assert (record.status, record.rows, record.rows_done, record.created, bytes(record.content)) == (
        "done", 3, 3, 3, b""
    )  # fmt: skip
    assert record.started_at is not None and record.finished_at >= record.started_at
    assert record.rows_read == 4  # the header and three rows
    assert ExternalOrder.objects.count() == 3
    page = client.get(response["Location"]).content.decode()
    assert "Finished: 3 of 3 lines imported." in page
    assert 'http-equiv="refresh"' not in page
    listing = client.get(reverse("admin:networks_reportimport_changelist")).content.decode()
    assert "3 of 3 lines imported" in listing


def test_the_import_reports_its_progress_while_it_runs(taobao, monkeypatch):
    # given: progress noted at every row read and every line recorded
    monkeypatch.setattr("networks.imports.PROGRESS_EVERY", 1)
    monkeypatch.setattr(network_services, "IMPORT_PROGRESS_EVERY", 1)
    record = report_import_create(network=taobao, file_name="a.csv", content=_taobao_file(_rows(3)))
    seen = []
    record_line = network_services.external_order_store

    def recording(**kwargs):
        seen.append(report_import_progress(ReportImport.objects.get(pk=record.pk)))
        return record_line(**kwargs)

    monkeypatch.setattr(network_services, "external_order_store", recording)

    # when it runs
    report_import_run(import_id=record.pk)

    # then, while it recorded the lines, its progress said how many of how many
    assert [(progress.phase, progress.done, progress.total) for progress in seen] == [
        ("recording", 0, 3), ("recording", 1, 3), ("recording", 2, 3)
    ]  # fmt: skip
    record.refresh_from_db()
    assert record.rows_read == 4  # the header and three rows, committed while reading
    assert report_import_progress(record).phase == "finished"


def test_the_task_run_twice_imports_once(taobao):
    record = report_import_create(network=taobao, file_name="a.csv", content=_taobao_file(_rows(2)))

    first = report_import_run_task.apply(args=[record.pk]).get()
    events = ExternalOrderEvent.objects.count()
    second = report_import_run_task.apply(args=[record.pk]).get()

    assert (first, second) == ("done", "done")
    record.refresh_from_db()
    assert (record.attempts, record.created, record.rows_done) == (1, 2, 2)
    assert ExternalOrder.objects.count() == 2
    assert ExternalOrderEvent.objects.count() == events


def test_a_run_waits_out_a_live_lease_and_takes_over_a_dead_workers(taobao, settings):
    record = report_import_create(network=taobao, file_name="a.csv", content=_taobao_file(_rows(2)))
    ReportImport.objects.filter(pk=record.pk).update(status="running", started_at=timezone.now(), attempts=1)

    # another worker holds it: this delivery does nothing
    assert report_import_run(import_id=record.pk).status == "running"
    assert not ExternalOrder.objects.exists()

    # that worker died: once a task could no longer be alive, the next delivery runs it
    expired = timezone.now() - timedelta(seconds=settings.CELERY_TASK_TIME_LIMIT + 1)
    ReportImport.objects.filter(pk=record.pk).update(started_at=expired)
    finished = report_import_run(import_id=record.pk)
    assert (finished.status, finished.attempts, finished.created) == ("done", 2, 2)


def test_an_unexpected_error_fails_the_import_and_changes_nothing(client, finance, taobao, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(network_services, "external_order_store", broken)

    response = _upload(client, taobao, "a.csv", _taobao_file(_rows(2)), follow=True)

    assert response.status_code == 200
    assert "Nothing imported: The import stopped on an unexpected error" in response.content.decode()
    record = ReportImport.objects.get()
    assert (record.status, bytes(record.content)) == ("failed", b"")
    assert not ExternalOrder.objects.exists()


def test_run_again_sends_waiting_imports_to_a_worker(client, finance, taobao, queued_only):
    _upload(client, taobao, "a.csv", _taobao_file(_rows(1)))
    record = ReportImport.objects.get()

    client.post(
        reverse("admin:networks_reportimport_changelist"), {"action": "run_again", "_selected_action": [record.pk]}
    )

    assert queued_only == [record.pk, record.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_deliveries_at_once_import_once():
    from tests.referrals.test_concurrency import run_together

    ensure_plan_in_force()
    network = Network.objects.get_or_create(code="taobao", defaults={"name": "淘宝联盟"})[0]
    record = report_import_create(network=network, file_name="a.csv", content=_taobao_file(_rows(20)))

    results, errors = run_together([lambda: report_import_run(import_id=record.pk)] * 4)

    assert errors == []
    record.refresh_from_db()
    assert (record.status, record.attempts, record.created) == ("done", 1, 20)
    assert ExternalOrder.objects.count() == 20
    assert ExternalOrderEvent.objects.count() == 20


@pytest.mark.broker
@pytest.mark.django_db(transaction=True)
def test_the_import_runs_on_a_worker_through_the_broker(celery_worker):  # noqa: F811 - the imported fixture
    ensure_plan_in_force()
    network = Network.objects.get_or_create(code="taobao", defaults={"name": "淘宝联盟"})[0]
    record = report_import_create(network=network, file_name="a.xlsx", content=_taobao_workbook(_rows(5)))

    result = report_import_run_task.apply_async(args=[record.pk], ignore_result=False, queue=celery_worker.test_queue)

    assert result.get(timeout=60) == "done"
    record.refresh_from_db()
    assert (record.status, record.rows_done, record.created) == ("done", 5, 5)
    assert ExternalOrder.objects.count() == 5
