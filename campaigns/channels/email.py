"""Email through Django's email backend (SMTP from the environment's EMAIL_* settings).

Each message has an HTML and a text part, a Message-ID derived from the delivery (a retry after
a crash sends the same id, so receivers can tell), `List-Unsubscribe` with the signed link and
`List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058), links rewritten to signed click
redirects and an open pixel. A batch of deliveries goes over one SMTP connection (Django's
`get_connection`) per sending thread, opened on first use and kept for the batch's chunks.
"""

from __future__ import annotations

import contextlib
import smtplib
import threading
from collections.abc import Generator, Iterable, Sequence
from email.utils import formataddr
from typing import TYPE_CHECKING, Any

from django.core.mail import EmailMultiAlternatives, get_connection
from django.utils.html import strip_tags

from campaigns import definition, messages, selectors
from campaigns.channels.base import Transport, TransportError
from campaigns.channels.sending import pipelined_sends
from campaigns.tracking import click_url, open_url

if TYPE_CHECKING:
    from campaigns.models import Delivery
    from profiles.models import Profile

# An email ready to go, its digest and its Message-ID.
_Prepared = tuple[EmailMultiAlternatives, str, str]


def _smtp_error(error: Exception) -> TransportError:
    """5xx replies are permanent (the address or content is refused); 4xx and lost
    connections are worth another try."""
    code = getattr(error, "smtp_code", None)
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        codes = [reply[0] for reply in error.recipients.values()]
        code = min(codes) if codes else None
    text = f"SMTP {code}: {type(error).__name__}" if code else type(error).__name__
    return TransportError(text, permanent=bool(code and 500 <= int(code) < 600))


def _rendered(template: dict[str, Any], context: dict[str, Any]) -> tuple[str, str, str]:
    """Subject (one line), HTML and text of an email message; the text part is the HTML's
    text when the message has none."""
    try:
        subject = messages.single_line(messages.render(template["subject"], context, html=False))
        html = messages.render(template["html"], context, html=True) if "html" in template else ""
        text = (
            messages.render(template["text"], context, html=False)
            if "text" in template
            else strip_tags(html)
        )
    except messages.RenderError as error:
        raise TransportError(f"the message did not render: {error}", permanent=True) from None
    return subject, html, text


class _Connection:
    """One SMTP connection for a batch; opened on first use, opened again once if the server
    closed it meanwhile."""

    def __init__(self) -> None:
        self._backend: Any = None

    def deliver(self, email: EmailMultiAlternatives) -> None:
        for attempt in (1, 2):
            try:
                if self._backend is None:
                    self._backend = get_connection(fail_silently=False)
                    self._backend.open()
                self._backend.send_messages([email])
                return
            except smtplib.SMTPServerDisconnected as error:
                self.close()
                if attempt == 2:
                    raise _smtp_error(error) from None
            except smtplib.SMTPRecipientsRefused as error:
                # The connection stays usable: only this message's recipient was refused.
                raise _smtp_error(error) from None
            except (smtplib.SMTPException, OSError) as error:
                self.close()
                raise _smtp_error(error) from None

    def close(self) -> None:
        backend, self._backend = self._backend, None
        if backend is not None:
            with contextlib.suppress(OSError, smtplib.SMTPException):  # already gone
                backend.close()


class EmailTransport(Transport):
    purpose = "email_marketing"

    def recipients(self, profiles: Sequence[Profile]) -> dict[int, str | None]:
        found = selectors.profile_emails(profile_ids=[profile.pk for profile in profiles])
        return {profile.pk: found.get(profile.pk) for profile in profiles}

    def undeliverable(self, profiles: Sequence[Profile]) -> set[int]:
        return selectors.emails_bounced(profile_ids=[profile.pk for profile in profiles])

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[TransportError | None]:
        with contextlib.closing(self.send_chunks([deliveries])) as outcomes:
            return next(outcomes)

    def send_chunks(
        self, chunks: Iterable[Sequence[Delivery]]
    ) -> Generator[list[TransportError | None], None, None]:
        """Each sending thread keeps one SMTP connection across the chunks: an SMTP
        exchange is a few round trips waiting on the server, so a few connections at once
        keep it busy, as the webhook sends do (campaigns.channels.sending)."""
        held = threading.local()
        opened: list[_Connection] = []

        def deliver(delivery: Delivery, prepared: _Prepared) -> None:
            connection = getattr(held, "connection", None)
            if connection is None:
                connection = held.connection = _Connection()
                opened.append(connection)
            email, digest, message_id = prepared
            connection.deliver(email)
            delivery.message_digest = digest
            delivery.provider_message_id = message_id

        chunks = list(chunks)
        addresses = self.recipients([delivery.profile for chunk in chunks for delivery in chunk])
        try:
            yield from pipelined_sends(
                chunks, lambda delivery: self._prepare(delivery, addresses), deliver
            )
        finally:
            for connection in opened:
                connection.close()

    def send(self, delivery: Delivery) -> None:
        error = self.send_batch([delivery])[0]
        if error is not None:
            raise error

    def _prepare(self, delivery: Delivery, addresses: dict[int, str | None]) -> _Prepared:
        """The delivery's email rendered (in the calling thread: rendering may read the
        database), with its digest and Message-ID."""
        address = addresses.get(delivery.profile.pk)
        if address is None:
            raise TransportError("the person has no email address", permanent=True)
        step = definition.step_at(
            delivery.version.definition["steps"], definition.pointer_path(delivery.step)
        )
        context = selectors.delivery_context(delivery=delivery, profile=delivery.profile)
        subject, html, text = _rendered(
            definition.send_message(step["send"], delivery.variant), context
        )
        blocks = context["recommendations"]
        linked: set[str] = set()

        def tracked(url: str) -> str:
            slot = blocks.slot_of(url)
            if slot:
                linked.add(slot)
            return click_url(delivery_id=delivery.pk, url=url, slot=slot)

        if html:
            html = messages.links_rewrite(html, tracked)
            html = messages.pixel_append(html, open_url(delivery_id=delivery.pk))
        domain = self.config["from"].rsplit("@", 1)[1]
        message_id = f"<cdp.{delivery.campaign_id}.{delivery.pk}@{domain}>"
        unsubscribe = context["unsubscribe_url"]
        headers = {
            "Message-ID": message_id,
            "List-Unsubscribe": f"<{unsubscribe}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
        email = self._email(subject, html, text, to=address, headers=headers)
        digest = messages.digest({"to": address, "subject": subject, "html": html, "text": text})
        delivery.recommendation_blocks = {
            slot: (blocks.runs.get(slot), len(blocks.served[slot])) for slot in linked
        }
        return email, digest, message_id

    def send_test(self, *, message: dict[str, Any], context: dict[str, Any], to: str) -> None:
        """A staff member's test send of a message rendered with `context`: no delivery, no
        tracking, the subject marked as a test."""
        subject, html, text = _rendered(message, context)
        connection = _Connection()
        try:
            connection.deliver(self._email(f"[Test] {subject}", html, text, to=to, headers={}))
        finally:
            connection.close()

    def _email(
        self, subject: str, html: str, text: str, *, to: str, headers: dict[str, str]
    ) -> EmailMultiAlternatives:
        sender = self.config["from"]
        from_name = self.config.get("from_name")
        email = EmailMultiAlternatives(
            subject=subject,
            body=text,
            from_email=formataddr((from_name, sender)) if from_name else sender,
            to=[to],
            reply_to=[self.config["reply_to"]] if self.config.get("reply_to") else None,
            headers=headers,
        )
        if html:
            email.attach_alternative(html, "text/html")
        return email
