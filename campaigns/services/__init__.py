"""Writes: campaigns and channels (`definitions`), the journey engine (`journeys`), the one
delivery path (`delivery`), variants, control groups and bandits (`experiments`), what
recipients do afterwards (`tracking`) and campaigns' part of
an erasure (`erasure`). Everything public
is importable from here."""

from campaigns.secrets import channel_secret
from campaigns.services.definitions import (
    CampaignStateError,
    campaign_create,
    campaign_definition_check,
    campaign_status_set,
    campaign_update,
    channel_config_check,
    channel_create,
    channel_secret_rotate,
    channel_update,
)
from campaigns.services.delivery import (
    TestSendError,
    campaign_test_send,
    deliveries_queue,
    deliveries_replay,
    deliveries_send,
    deliveries_sweep,
    delivery_send,
)
from campaigns.services.erasure import campaign_data_erase
from campaigns.services.experiments import (
    arm_assign,
    bandit_refresh,
    bandits_refresh,
    in_holdout,
)
from campaigns.services.journeys import (
    broadcast_batch,
    broadcasts_due,
    campaign_entries_exit,
    campaign_triggers_fire,
    entries_advance,
    entries_advance_send,
    entries_due_advance,
)
from campaigns.services.tracking import (
    delivery_click_record,
    delivery_feedback_record,
    delivery_open_record,
    delivery_preferences,
    delivery_preferences_set,
    delivery_unsubscribe,
)
from campaigns.services.webpush import (
    InvalidSubscription,
    push_subscription_delete,
    push_subscription_register,
)

__all__ = [
    "CampaignStateError",
    "InvalidSubscription",
    "TestSendError",
    "arm_assign",
    "bandit_refresh",
    "bandits_refresh",
    "broadcast_batch",
    "broadcasts_due",
    "campaign_create",
    "campaign_data_erase",
    "campaign_definition_check",
    "campaign_entries_exit",
    "campaign_status_set",
    "campaign_test_send",
    "campaign_triggers_fire",
    "campaign_update",
    "channel_config_check",
    "channel_create",
    "channel_secret",
    "channel_secret_rotate",
    "channel_update",
    "deliveries_queue",
    "deliveries_replay",
    "deliveries_send",
    "deliveries_sweep",
    "delivery_click_record",
    "delivery_feedback_record",
    "delivery_open_record",
    "delivery_preferences",
    "delivery_preferences_set",
    "delivery_send",
    "delivery_unsubscribe",
    "entries_advance",
    "entries_advance_send",
    "entries_due_advance",
    "in_holdout",
    "push_subscription_delete",
    "push_subscription_register",
]
