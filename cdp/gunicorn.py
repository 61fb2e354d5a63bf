"""gunicorn settings of the web nodes, also used by bench/ingest.py:
`gunicorn -c python:cdp.gunicorn cdp.wsgi` (command-line options override these).

gthread workers because SDKs, proxies and load balancers keep connections alive between
requests: a thread waits on an idle connection, not a whole process as with sync workers, and
a request waiting on PostgreSQL (the commit of its events) leaves the process's other threads
working. One process per core: more processes contend for the same cores with PostgreSQL and
the Celery workers, and each holds its own database connections.
"""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
worker_class = "gthread"
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
# Longer than the SDKs' flush intervals, so a client's next request reuses its connection.
keepalive = 30
backlog = 2048
