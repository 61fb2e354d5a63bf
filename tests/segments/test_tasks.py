"""Services queue the app's tasks by name (access.queueing.task_named), so every process that
may queue one must have them registered, not only the workers."""

import os
import subprocess
import sys

from django.conf import settings


def test_a_fresh_process_knows_every_task_the_services_queue_by_name():
    # A web process imports no task module of its own accord: the app's ready() must.
    script = (
        "import django; django.setup()\n"
        "from access.queueing import task_named\n"
        "from segments.services import task_names as q\n"
        "names = [q.SEGMENT_REFRESH_TASK, q.WEBHOOK_DELIVER_TASK, q.MODEL_TRAIN_TASK]\n"
        "print(all(task_named(name).name == name for name in names))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "cdp.settings"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.stdout.strip() == "True", result.stderr
