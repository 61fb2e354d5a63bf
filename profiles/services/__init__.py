"""Profile writes, one module per concern; the names other apps use are importable from here.

- `events`: claiming accepted events for processing and marking them processed;
- `apply`: applying a profile's new events to it and saving profiles, through `traits`,
  `context` and `computed` (what an event does to each part of a profile);
- `merge`: moving a merged-away profile onto its survivor (called by identity);
- `audit`: recording staff and API access to a profile;
- `money`: the workspace currency and the rates that convert orders into it;
- `imports`: bulk imports of profiles and events from files, through ingestion;
- `quarantine`: replaying or discarding quarantined messages;
- `erasure`: deleting events, quarantined messages and profiles (consent's erasure and retention).
"""

from profiles.services.apply import profile_apply_events, profiles_save
from profiles.services.audit import profile_access_record
from profiles.services.computed import profiles_sessions_recount
from profiles.services.context import profile_device_token_forget, user_agent_parse
from profiles.services.erasure import (
    events_delete,
    events_delete_matching,
    profiles_erase,
    quarantined_messages_delete,
    quarantined_messages_delete_before,
)
from profiles.services.events import (
    events_claim,
    events_content_save,
    events_mark_processed,
    events_pending_ids,
)
from profiles.services.imports import (
    IMPORT_SLICE_SECONDS,
    data_import_create,
    data_import_run,
)
from profiles.services.merge import profiles_absorb, rows_update_from_map
from profiles.services.money import (
    amount_converted,
    currency_rate_delete,
    currency_rate_set,
    currency_rates,
    order_currency,
    rates_cache,
    workspace_currency,
)
from profiles.services.quarantine import (
    ReplayResult,
    quarantine_discard,
    quarantine_message_edit,
    quarantine_replay,
)
from profiles.services.traits import profile_traits_patch

__all__ = [
    "IMPORT_SLICE_SECONDS",
    "ReplayResult",
    "amount_converted",
    "currency_rate_delete",
    "currency_rate_set",
    "currency_rates",
    "data_import_create",
    "data_import_run",
    "events_claim",
    "events_content_save",
    "events_delete",
    "events_delete_matching",
    "events_mark_processed",
    "events_pending_ids",
    "order_currency",
    "profile_access_record",
    "profile_apply_events",
    "profile_device_token_forget",
    "profile_traits_patch",
    "profiles_absorb",
    "profiles_erase",
    "profiles_save",
    "profiles_sessions_recount",
    "quarantine_discard",
    "quarantine_message_edit",
    "quarantine_replay",
    "quarantined_messages_delete",
    "quarantined_messages_delete_before",
    "rates_cache",
    "rows_update_from_map",
    "user_agent_parse",
    "workspace_currency",
]
