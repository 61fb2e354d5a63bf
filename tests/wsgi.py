"""Calling a WSGI application in process, as the web server calls cdp.wsgi's (its front
routes and Django's handler behind them)."""

from __future__ import annotations

import io
import sys
from typing import Any


def wsgi_call(
    application: Any, method: str, path: str, query: str = "", body: bytes = b"", **environ: str
) -> tuple[str, dict[str, str], bytes]:
    """(status line, headers, content); `environ` adds to or overrides the request's."""
    answered: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        answered.update(status=status, headers=dict(headers))

    content = b"".join(
        application(
            {
                "REQUEST_METHOD": method,
                "PATH_INFO": path,
                "QUERY_STRING": query,
                "SERVER_NAME": "testserver",
                "SERVER_PORT": "80",
                "HTTP_HOST": "testserver",
                "wsgi.url_scheme": "http",
                "wsgi.input": io.BytesIO(body),
                "wsgi.errors": sys.stderr,
                "CONTENT_LENGTH": str(len(body)),
                "CONTENT_TYPE": "text/plain",
                **environ,
            },
            start_response,
        )
    )
    return answered["status"], answered["headers"], content
