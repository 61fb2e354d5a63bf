"""Channel transports, picked by the channel's kind (see `base` for the contract)."""

from campaigns.channels.base import Transport, TransportError
from campaigns.channels.email import EmailTransport
from campaigns.channels.push import PushTransport
from campaigns.channels.web_push import WebPushTransport
from campaigns.channels.webhook import WebhookTransport
from campaigns.models import Channel

TRANSPORTS: dict[str, type[Transport]] = {
    Channel.Kind.EMAIL: EmailTransport,
    Channel.Kind.PUSH: PushTransport,
    Channel.Kind.WEB_PUSH: WebPushTransport,
    Channel.Kind.WEBHOOK: WebhookTransport,
}


def transport_for(channel: Channel) -> Transport:
    try:
        return TRANSPORTS[channel.kind](channel)
    except KeyError:
        raise TransportError(f"no transport for {channel.kind} channels", permanent=True) from None


__all__ = ["TRANSPORTS", "Transport", "TransportError", "transport_for"]
