"""The contract every channel transport keeps (STYLE rule 13).

A transport is built for one `Channel` row. The delivery path works in batches (one task
claims up to SEND_BATCH deliveries), so each question is asked of many people at once:

    recipients(profiles) -> {profile id: str | None}
        The address this channel would write to for each person (an email address, a device
        token, the endpoint URL), or None when there is none: the send is then skipped with
        the reason "no address". By default `recipient(profile)` per person.

    undeliverable(profiles) -> set of profile ids
        The people whose address the provider told us does not work (a hard bounce): the
        send is skipped with the reason "bounced". By default nobody.

    send_batch(deliveries) -> [TransportError | None, ...]
        Render each delivery's message and hand it to the provider, reusing one connection
        (or pool) for the batch; the outcome of each, in order. On success it sets
        `delivery.message_digest` and `delivery.provider_message_id` (the caller saves them).
        A failure is `TransportError(permanent=...)`: permanent failures (a 5xx SMTP reply,
        4xx HTTP, a template that cannot render) are not retried, anything else is, with
        backoff; `disable=True` also disables the channel (a receiver that answered 410 Gone);
        `gone=True` says the person's address no longer exists (a push token or subscription
        the provider reports unregistered). Rendering may read the database; sending must
        not write to it: the delivery path records outcomes. `send(delivery)` is the batch
        of one.

    send_chunks(chunks) -> iterator of [TransportError | None, ...]
        The delivery path's way in: each chunk's outcomes (as send_batch), in order, the
        connection (or pool) kept across the chunks. A transport may start on the next chunk
        before the caller is done with the outcomes it was given (it records them
        meanwhile); by default one send_batch per chunk.

    gone_forget() -> None
        Called by the delivery path after each batch: remove the addresses the provider
        reported gone during it (a dead push token, a browser subscription answered 410).

`purpose` is the consent purpose a marketing send through this channel needs; the delivery
path asks the consent gate for it before every send (transactional campaigns skip it, never
the suppression check).
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile


class TransportError(Exception):
    def __init__(
        self, message: str, *, permanent: bool = False, disable: bool = False, gone: bool = False
    ) -> None:
        super().__init__(message)
        self.permanent = permanent or disable or gone
        self.disable = disable
        self.gone = gone


class Transport:
    purpose: ClassVar[str] = ""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.config: dict[str, Any] = channel.config or {}

    def consent_purpose(self) -> str:
        return self.purpose

    def recipient(self, profile: Profile) -> str | None:
        raise NotImplementedError

    def recipients(self, profiles: Sequence[Profile]) -> dict[int, str | None]:
        return {profile.pk: self.recipient(profile) for profile in profiles}

    def undeliverable(self, profiles: Sequence[Profile]) -> set[int]:
        return set()

    def send_batch(self, deliveries: Sequence[Delivery]) -> list[TransportError | None]:
        outcomes: list[TransportError | None] = []
        for delivery in deliveries:
            try:
                self.send(delivery)
            except TransportError as error:
                outcomes.append(error)
            else:
                outcomes.append(None)
        return outcomes

    def send_chunks(
        self, chunks: Iterable[Sequence[Delivery]]
    ) -> Generator[list[TransportError | None], None, None]:
        for chunk in chunks:
            yield self.send_batch(chunk)

    def send(self, delivery: Delivery) -> None:
        raise NotImplementedError

    def gone_forget(self) -> None:
        """Remove the addresses reported gone in the last batch (none by default)."""
