"""Campaign tests: a real SMTP server (aiosmtpd), an email channel, people with addresses, and
events sent through the real pipeline. Time is passed to the services as `now` (a frozen
clock); sends queued after commit run only where a test executes the commit callbacks."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import itertools
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from django.utils import timezone

from campaigns import services
from campaigns.models import Campaign, Channel, Delivery, Entry
from cdp import pipeline
from identity.models import Identity
from profiles.models import Event, Profile
from tests.identity.factories import event_make

_users = itertools.count(1)
# aiosmtpd logs every SMTP command at INFO.
logging.getLogger("mail.log").setLevel(logging.WARNING)

CART = "Product Added"
ORDER = "Order Completed"


class SmtpSink:
    """Accepts mail and keeps it; `refuse` makes it answer RCPT with that reply instead."""

    def __init__(self) -> None:
        self.messages: list[email.message.EmailMessage] = []
        self.refuse: str | None = None
        self.sessions = 0  # EHLO greetings: one per connection a client opened

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.refuse:
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)
        )
        return "250 Message accepted"

    def to(self, address: str) -> list[email.message.EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(settings) -> Iterator[SmtpSink]:
    sink = SmtpSink()
    controller = Controller(sink, hostname="127.0.0.1", port=_free_port())
    controller.start()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = controller.port
    settings.EMAIL_USE_TLS = False
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture(autouse=True)
def _campaign_settings(settings) -> None:
    # Quiet hours follow the real clock of the test run unless a test sets them with a `now`.
    settings.CAMPAIGN_QUIET_HOURS = None
    settings.CAMPAIGN_FREQUENCY_CAP = {"messages": 3, "days": 7}
    settings.SITE_URL = "https://cdp.example.com"


@pytest.fixture
def email_channel(db, admin_user) -> Channel:
    channel, _ = services.channel_create(
        kind="email",
        name="Newsletter",
        config={"from": "shop@example.com", "from_name": "The Shop"},
        actor=admin_user,
    )
    return channel


def person(
    *, email_address: str | None = None, traits: dict | None = None, timezone: str | None = None
) -> Profile:
    """A resolved profile with a user id identity (and an email one when given)."""
    user_id = f"user-{next(_users)}"
    profile = Profile.objects.create(
        traits=traits or {}, context={"timezone": timezone} if timezone else {}
    )
    Identity.objects.create(kind="user_id", value=user_id, profile=profile)
    if email_address:
        Identity.objects.create(kind="email", value=email_address, profile=profile)
    profile.user_id = user_id  # type: ignore[attr-defined]
    return profile


def track(
    source: Any, profile: Profile, name: str, *, at: dt.datetime, properties: dict | None = None
) -> Event:
    """Send one track event for this person through the real pipeline."""
    event = event_make(
        source, event=name, user_id=profile.user_id, at=at, properties=properties or {}
    )
    pipeline.events_process(event_ids=[event.pk])
    event.refresh_from_db()
    return event


def delivery_make(
    campaign: Campaign, profile: Profile, channel: Channel, *, number: int = 1, **fields: Any
) -> Delivery:
    """A delivery row as the engine records it (with its entry), without running the engine."""
    version = campaign.versions.get()
    entry = Entry.objects.create(
        campaign=campaign,
        version=version,
        profile=profile,
        number=number,
        entered_at=timezone.now(),
    )
    return Delivery.objects.create(
        campaign=campaign,
        version=version,
        entry=entry,
        profile=profile,
        step="/steps/1",
        channel=channel,
        **fields,
    )


def cart_reminder(channel: Channel, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "Cart reminder",
        "kind": "marketing",
        "trigger": {"event": CART},
        "entry": "once",
        "goal": {"event": ORDER, "within": {"days": 3}},
        "steps": [
            {"wait": {"minutes": 60}},
            {
                "send": {
                    "channel": channel.pk,
                    "message": {
                        "subject": "You left {{ event.properties.name | default: 'something' }}",
                        "html": (
                            "<p>Hi {{ profile.traits.first_name | default: 'there' }},</p>"
                            '<p><a href="https://shop.example.com/cart?x=1&amp;y=2">Back to your'
                            " cart</a></p>"
                        ),
                        "text": "Hi {{ profile.traits.first_name | default: 'there' }}",
                    },
                }
            },
        ],
        "status": "active",
    }
    body.update(overrides)
    return body


@pytest.fixture
def make_campaign(admin_user) -> Callable[..., Campaign]:
    def make(body: dict[str, Any]) -> Campaign:
        definition = {
            key: body[key]
            for key in ("trigger", "entry", "goal", "frequency_cap", "control", "steps")
            if key in body
        }
        return services.campaign_create(
            name=body["name"],
            kind=body.get("kind", "marketing"),
            definition=definition,
            status=body.get("status", "active"),
            actor=admin_user,
        )

    return make
