"""A marketer uploads a file on the Data page and watches a worker import it."""

from celery import current_app

from profiles.models import DataImport, Event
from profiles.tasks import data_import_task
from tests.conftest import celery_worker

ROWS = 40


def test_the_import_page_follows_the_worker_and_lists_the_refused_rows(
    page, live_server, marketer, login, shot, source, settings, tmp_path
):
    settings.MEDIA_ROOT = tmp_path
    lines = ["event,userId,timestamp"]
    lines += [f"Product Viewed,u-{n},2025-03-0{1 + n % 9}T10:00:00Z" for n in range(ROWS)]
    lines[7] = "Product Viewed,u-6,last tuesday"  # line 8 of the file
    upload = tmp_path / "history.csv"
    upload.write_text("\n".join(lines) + "\n")

    login(marketer)
    page.goto(f"{live_server.url}/data/imports/")
    current_app.conf.task_always_eager = False  # no worker yet: the job waits in the queue
    page.select_option("#id_source", str(source.pk))
    page.select_option("#id_kind", "events")
    page.set_input_files("#id_file", str(upload))
    page.click("form[enctype] button.primary")
    page.wait_for_url(f"{live_server.url}/data/imports/*/")
    assert page.locator("#import-progress").get_attribute("data-status") == "queued"
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "0"
    shot("data-import-queued")

    job = DataImport.objects.get()
    with celery_worker(queue="default", env={"MEDIA_ROOT": str(tmp_path)}):
        data_import_task.delay(job.pk)  # the queue was emptied when the worker started
        page.wait_for_selector('#import-progress[data-status="done"]', timeout=60_000)
    assert page.get_by_role("progressbar").get_attribute("aria-valuenow") == "100"
    report = page.locator("#import-progress table").inner_text()
    assert "8" in report and "timestamp" in report
    assert Event.objects.filter(source=source).count() == ROWS - 1
    shot("data-import-done")
