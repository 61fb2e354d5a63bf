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
