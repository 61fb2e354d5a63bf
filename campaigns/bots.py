"""Which opens and clicks are machines, not people (a pure core: text and times in, a reason
out). Such events are still recorded, with their reason, and counted apart in results.

- Apple Mail Privacy Protection fetches every image of a message when it arrives, through
  Apple's proxies, whose user agent is the bare "Mozilla/5.0": an open, but nobody read.
- Link scanners (Microsoft Defender Safe Links, Mimecast, Proofpoint, Barracuda...) follow
  every link of a message before it is delivered: they name themselves, send no user agent,
  or click within seconds of the send, faster than a person can open and read.
"""

from __future__ import annotations

import datetime as dt

# Sooner than this after the send, an open or click is a machine's (a scanner or a prefetch).
TOO_FAST = dt.timedelta(seconds=10)
SCANNER_WORDS = (
    "barracuda",
    "mimecast",
    "proofpoint",
    "safelinks",
    "urldefense",
    "forcepoint",
    "sophos",
    "trendmicro",
    "fireeye",
    "symantec",
    "bitdefender",
    "headlesschrome",
    "python-requests",
    "python-urllib",
    "go-http-client",
    "curl/",
    "wget/",
    "okhttp",
    "java/",
    "bot",
    "spider",
    "crawler",
    "preview",
    "scanner",
)
APPLE_PREFETCH = "Mozilla/5.0"


def bot_reason(*, kind: str, user_agent: str, at: dt.datetime, sent_at: dt.datetime | None) -> str:
    """Why this open or click looks machine-made: "apple_privacy", "scanner", "too_fast";
    or "" for what looks like a person."""
    agent = user_agent.strip()
    if kind == "open" and agent == APPLE_PREFETCH:
        return "apple_privacy"
    lowered = agent.lower()
    if not agent or any(word in lowered for word in SCANNER_WORDS):
        return "scanner"
    if sent_at is not None and at - sent_at < TOO_FAST:
        return "too_fast"
    return ""
