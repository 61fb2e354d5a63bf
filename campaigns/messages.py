"""Message templates: Liquid (python-liquid), never Django templates (STYLE rule 19).

Marketers and CRM systems write these templates, so the engine is sandboxed: no file system
(`{% include %}` and `{% render %}` find nothing), no Python attributes, bounded loops, output
and nesting. HTML parts are autoescaped, so a trait holding `<script>` arrives as text; Liquid
never re-reads the values it prints, so a trait holding `{{ 7*7 }}` arrives as those characters.

A template sees `profile.traits`, `profile.computed`, `profile.id`, `event.properties` (the
event that set the journey off), `campaign.name`, `unsubscribe_url` and recommendation blocks
(`{% for item in recommendations.home limit: 4 %}`, see campaigns.recommended); `| default:`
gives fallbacks. Pure Python: no ORM; the caller builds the context.
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from liquid import BoundTemplate, DictLoader, Environment
from liquid.exceptions import LiquidError, TemplateNotFoundError


class _Sandbox(Environment):
    # Limits that keep a hostile template from holding a worker: a loop, the text it writes,
    # and how deep it nests are bounded.
    loop_iteration_limit = 10_000
    output_stream_limit = 1_000_000
    context_depth_limit = 30
    local_namespace_limit = 10_000


_html_env = _Sandbox(autoescape=True, loader=DictLoader({}))
_text_env = _Sandbox(autoescape=False, loader=DictLoader({}))


class RenderError(ValueError):
    """A template that cannot be parsed or rendered (the message says where)."""


# What a template sees when it is checked on save: every name exists, values are empty, so
# `| default:` and conditions take their fallback paths.
SAMPLE_CONTEXT: dict[str, Any] = {
    "profile": {"id": 0, "traits": {}, "computed": {}},
    "event": {"name": "", "properties": {}},
    "campaign": {"name": ""},
    "unsubscribe_url": "https://example.invalid/unsubscribe",
    "recommendations": {"home": [], "cart": [], "buy_again": [], "trending": []},
}


@functools.lru_cache(maxsize=512)
def _parsed(template: str, html: bool) -> BoundTemplate:
    # A batch sends one message to many people: it is parsed once, then rendered per person.
    return (_html_env if html else _text_env).from_string(template)


@functools.lru_cache(maxsize=512)
def _names_read(template: str) -> frozenset[str]:
    # Liquid's static analysis: the root names the template reads, wherever (output, tags,
    # filter arguments, brackets), with those it assigns itself left out.
    return frozenset(_parsed(template, False).analyze().globals)


def reads(value: Any, name: str) -> bool:
    """Whether a message (a template, or JSON whose strings are templates) reads the context
    name `name`: what a template never reads need not be built (the unsubscribe link is
    signed). A template that does not parse counts as reading everything; it fails to render
    anyway, saying why."""
    if isinstance(value, str):
        try:
            return name in _names_read(value)
        except LiquidError:
            return True
    if isinstance(value, dict):
        return any(reads(item, name) for item in value.values())
    if isinstance(value, list):
        return any(reads(item, name) for item in value)
    return False


def render(template: str, context: Mapping[str, Any], *, html: bool) -> str:
    try:
        return str(_parsed(template, html).render(**context))
    except TemplateNotFoundError:
        raise RenderError("include and render are not available in messages") from None
    except LiquidError as error:
        raise RenderError(_first_line(error)) from None
    except (RecursionError, MemoryError):
        raise RenderError("the template nests or grows too much") from None


def template_problem(template: str, *, html: bool) -> str | None:
    """Why this template cannot be used (parse or render error with the sample context)."""
    try:
        render(template, SAMPLE_CONTEXT, html=html)
    except RenderError as error:
        return str(error)
    return None


def _first_line(error: LiquidError) -> str:
    # The first line names the problem; the rest quotes the template back with a caret.
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def render_json(value: Any, context: Mapping[str, Any]) -> Any:
    """A JSON body whose strings are templates (webhook messages); rendered as text, since
    the body is JSON-encoded rather than read as HTML."""
    if isinstance(value, str):
        return render(value, context, html=False)
    if isinstance(value, dict):
        return {key: render_json(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_json(item, context) for item in value]
    return value


def single_line(text: str) -> str:
    """Header values (subjects) on one line: a newline in a header would start another."""
    return " ".join(text.split())


_LINK = re.compile(r"""(<a\b[^>]*?\bhref\s*=\s*)(["'])(https?://[^"'<>\s]+)\2""", re.IGNORECASE)


def links_rewrite(body: str, wrap: Callable[[str], str]) -> str:
    """Replace every http(s) link of an HTML body by `wrap(url)` (click tracking). The href
    is HTML text, so it is unescaped before wrapping and the result escaped again."""

    def replace(match: re.Match[str]) -> str:
        url = html.unescape(match.group(3))
        return f"{match.group(1)}{match.group(2)}{html.escape(wrap(url))}{match.group(2)}"

    return _LINK.sub(replace, body)


def pixel_append(body: str, url: str) -> str:
    """An open-tracking pixel, inside <body> when there is one."""
    tag = f'<img src="{html.escape(url)}" width="1" height="1" alt="" style="display:none">'
    index = body.lower().rfind("</body>")
    return body[:index] + tag + body[index:] if index >= 0 else body + tag


def digest(parts: Mapping[str, Any]) -> str:
    """SHA-256 of a rendered message: proves what was sent without keeping its text."""
    raw = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(raw.encode()).hexdigest()
