"""Benchmarks that print figures next to the issues' targets (not tests).

Each module `bench/<name>.py` has a `main()`. `python -m bench` runs them all; `python -m bench
<name> [args...]` runs the one named, with the remaining arguments left in sys.argv for it."""


def database_recreate(url: str) -> None:
    """Drop and create the database a bench runs on (named by the URL's path)."""
    from urllib.parse import urlsplit, urlunsplit

    import psycopg2

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(urlunsplit(parts._replace(path="/postgres")))
    conn.autocommit = True
    with conn.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')
    conn.close()


def database_prepare(url: str, env: dict[str, str], *, source: str, write_key: str) -> None:
    """A fresh database for a bench's server: recreated, migrated, and one source with this
    write key (the manage.py commands run with `env`, whose DATABASE_URL is `url`)."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    database_recreate(url)
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=root, env=env, check=True
    )
    subprocess.run(
        [sys.executable, "manage.py", "create_source", source, "--write-key", write_key],
        cwd=root,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def celery_worker_command(*, queues: str, concurrency: int) -> list[str]:
    """A Celery worker as the benches run it beside their server: quiet, and without the
    cluster chatter (gossip, mingle, heartbeat) a single-host run has no use for."""
    import sys
    from pathlib import Path

    return [
        *(str(Path(sys.executable).parent / "celery"), "-A", "cdp", "worker", "-Q", queues),
        *("-c", str(concurrency), "-l", "warning"),
        *("--without-gossip", "--without-mingle", "--without-heartbeat"),
    ]


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PrivateRedis:
    """A redis-server of the caller's own on a free port, keeping nothing on disk (so a
    restart starts empty, as a Redis without persistence does): the faults bench and tests
    kill and restart it without touching the shared one."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process = None

    def start(self) -> None:
        import socket
        import subprocess
        import time

        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("the private redis-server did not start")

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def server_wait(port: int, web=None, timeout: float = 60) -> None:
    """Until the web server on this port answers /healthz (200, or 503 while a dependency is
    still coming up); a `web` process that exits meanwhile is an error."""
    import http.client
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web is not None and web.poll() is not None:
            raise RuntimeError("the web server exited; see its log under bench/results/")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/healthz")
            if connection.getresponse().status in (200, 503):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("the web server did not answer within a minute")


def paced_get(
    port: int, paths: list[str], *, headers: dict[str, str], rate: float, connections: int
) -> tuple[float, float, float, dict[int, int]]:
    """GET `paths` offered at a fixed `rate` on `connections` keep-alive connections, open
    loop: request i is due at start + i / rate and goes out on the first free connection;
    its latency counts from when it was due, so a slow answer is charged to the requests
    queued behind it. Returns p50 and p99 in ms, answers/s and the non-200 statuses.

    The client is bench.ingest's event loop (one thread, callbacks, ~80 us of CPU per
    request): a thread per connection made the client's own GIL hand-offs part of the
    latency it measured, on the cores the server shares."""
    import asyncio
    import statistics

    from bench.ingest import _PacedClient

    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{head}\r\n".encode() for path in paths]

    async def run() -> tuple[_PacedClient, float]:
        client = _PacedClient(requests, rate, port=port)
        return client, await client.run(connections)

    client, elapsed = asyncio.run(run())
    cuts = statistics.quantiles(client.latencies, n=100, method="inclusive")
    bad = {status: n for status, n in client.statuses.items() if status != 200}
    return cuts[49] * 1000, cuts[98] * 1000, len(paths) / elapsed, bad
