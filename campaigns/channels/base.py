"""The contract every channel transport keeps (STYLE rule 13).

A transport is built for one `Channel` row and answers two questions:

    recipient(profile) -> str | None
        The address this channel would write to for the person (an email address, a device
        token, the endpoint URL), or None when there is none: the send is then skipped with
        the reason "no address".

    undeliverable(profile) -> bool
        Whether the provider told us this person's address does not work (a hard bounce):
        the send is skipped with the reason "bounced". By default nothing is.

    send(delivery) -> None
        Render the delivery's message and hand it to the provider. On success it sets
        `delivery.message_digest` and `delivery.provider_message_id` (the caller saves them);
        on failure it raises `TransportError(permanent=...)`: permanent failures (a 5xx SMTP
        reply, 4xx HTTP, a template that cannot render) are not retried, anything else is,
        with backoff; `disable=True` also disables the channel (a receiver that answered 410
        Gone). It must not write to the database: the delivery path records outcomes.

`purpose` is the consent purpose a marketing send through this channel needs; the delivery
path asks the consent gate for it before every send (transactional campaigns skip it, never
the suppression check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from campaigns.models import Channel, Delivery
    from profiles.models import Profile


class TransportError(Exception):
    def __init__(self, message: str, *, permanent: bool = False, disable: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent or disable
        self.disable = disable


class Transport:
    purpose: ClassVar[str] = ""

    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self.config: dict[str, Any] = channel.config or {}

    def consent_purpose(self) -> str:
        return self.purpose

    def recipient(self, profile: Profile) -> str | None:
        raise NotImplementedError

    def undeliverable(self, profile: Profile) -> bool:
        return False

    def send(self, delivery: Delivery) -> None:
        raise NotImplementedError
