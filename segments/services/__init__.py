"""Writes: segment definitions, membership refresh (full and real-time), webhooks.

Membership is materialised in `SegmentMembership`; every enter/exit is also a `MembershipChange`
row, announced after commit with `segments.signals.segment_membership_changed` and, when the
segment has a webhook, recorded as a `WebhookDelivery` that a task sends after commit.

Modules: `definitions`, `refresh` (full refresh and the recording of changes), `realtime`
(the pipeline stage), `webhooks`, `model_runs` (training clustering and propensity models,
their scores written to profiles), `model_drift` (their scores today against training's) and
`erasure` (segments' part of a privacy erasure).
Everything public is importable from here.
"""

from segments.services.definitions import (
    segment_archive,
    segment_create,
    segment_definition_check,
    segment_duplicate,
    segment_unarchive,
    segment_update,
)
from segments.services.erasure import segment_data_erase
from segments.services.model_drift import propensity_drift_check
from segments.services.model_runs import (
    RollbackRefused,
    cluster_rename,
    model_rollback,
    model_train,
    model_train_request,
    models_retrain_all,
)
from segments.services.realtime import (
    INDEX_VERSION_KEY,
    ORDER_ONLY_FEATURES,
    SENTINEL_NOW,
    SENTINEL_PROFILES,
    IndexedSegment,
    MembershipTransition,
    segment_candidates,
    segment_index,
    segment_index_invalidate,
    segment_memberships_evaluate,
    segment_memberships_refresh,
)
from segments.services.refresh import (
    RefreshResult,
    membership_changes_record,
    segment_refresh,
    segments_refresh_all,
)
from segments.services.webhooks import (
    WEBHOOK_BATCH,
    WEBHOOK_MAX_ATTEMPTS,
    TransientError,
    webhook_deliveries_purge,
    webhook_deliveries_record,
    webhook_delivery_send,
    webhook_secret,
    webhook_secret_rotate,
    webhook_signing_secrets,
)

__all__ = [
    "INDEX_VERSION_KEY",
    "ORDER_ONLY_FEATURES",
    "SENTINEL_NOW",
    "SENTINEL_PROFILES",
    "WEBHOOK_BATCH",
    "WEBHOOK_MAX_ATTEMPTS",
    "IndexedSegment",
    "MembershipTransition",
    "RefreshResult",
    "RollbackRefused",
    "TransientError",
    "cluster_rename",
    "membership_changes_record",
    "model_rollback",
    "model_train",
    "model_train_request",
    "models_retrain_all",
    "propensity_drift_check",
    "segment_archive",
    "segment_candidates",
    "segment_create",
    "segment_data_erase",
    "segment_definition_check",
    "segment_duplicate",
    "segment_index",
    "segment_index_invalidate",
    "segment_memberships_evaluate",
    "segment_memberships_refresh",
    "segment_refresh",
    "segment_unarchive",
    "segment_update",
    "segments_refresh_all",
    "webhook_deliveries_purge",
    "webhook_deliveries_record",
    "webhook_delivery_send",
    "webhook_secret",
    "webhook_secret_rotate",
    "webhook_signing_secrets",
]
