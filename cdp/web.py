"""The web nodes' server: `python -m cdp.web` serves cdp.wsgi with granian. bench/ingest.py
runs this same command, so it measures what the web nodes run.

granian, not gunicorn: its HTTP handling is Rust, outside the GIL, where gunicorn's gthread
worker parses requests and hands keep-alive connections between its threads in Python. On the
2-core bench machine that was the difference between 905-1,341 us and 609-919 us of web
process CPU per single-event request (the application itself takes ~450 us), and 718-1,022
against 1,025-1,397 single events/s in paired runs.

Settings (environment):
- WEB_BIND: host:port to listen on (0.0.0.0:8000).
- WEB_CONCURRENCY: worker processes (one per core): more contend for the same cores with
  PostgreSQL and the Celery workers, and each holds its own database connections.
- WEB_THREADS: threads per process running Django (16). A request waiting on PostgreSQL (the
  commit of its events) leaves the others working, and single events of concurrent requests
  share one INSERT and one commit per process (profiles/ingestion/batching.py), which needs
  several requests in flight per process.
Connections are kept alive between requests (SDKs, proxies and load balancers reuse them).
"""

from __future__ import annotations

import os


def web_settings() -> dict[str, object]:
    # Web nodes listen on every interface, behind the proxy that terminates TLS.
    host, _, port = os.environ.get("WEB_BIND", "0.0.0.0:8000").rpartition(":")
    return {
        "address": host,
        "port": int(port),
        "workers": int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2)),
        "blocking_threads": int(os.environ.get("WEB_THREADS", "16")),
    }


def main() -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    Granian(
        "cdp.wsgi:application",
        interface=Interfaces.WSGI,
        backlog=2048,
        # A worker that dies (out of memory, a crashed extension) is replaced, not lost.
        respawn_failed_workers=True,
        log_level=LogLevels(os.environ.get("WEB_LOG_LEVEL", "warning")),
        **web_settings(),
    ).serve()


if __name__ == "__main__":
    main()
