"""Writes: consent records and the pipeline's consent stage, consent on profile merges,
suppression, privacy requests (access export, rectification, erasure), retention.

Modules: `consent` (records, event signals, the pipeline stage), `merge` (the strictest-wins
rule identity's merges call), `suppression` (the suppressed hashes, ingestion's filter, the
suppression hooks), `privacy_requests` (the request workflow), `subject_export` (the ACCESS
export), `erasure` (removal everywhere, erasure hooks, the verification) with `scan` (the
search for identifiers in every table and the cache that erasure uses), and `retention`.
Everything public is importable from here.
"""

from consent.services.consent import (
    ConsentFiltered,
    consent_filter_resolved,
    consent_record,
    consent_signals_audit,
)
from consent.services.erasure import (
    ERASURE_HOOKS,
    ErasureHook,
    erasure_hook_register,
    erasure_sweep_and_verify,
    subject_erase,
)
from consent.services.merge import consents_merge, consents_unmerge
from consent.services.policies import purpose_save, retention_policy_save
from consent.services.privacy_requests import (
    PrivacyRequestError,
    privacy_request_assign,
    privacy_request_cancel,
    privacy_request_comment_add,
    privacy_request_create,
    privacy_request_export_delivered,
    privacy_request_process,
    privacy_request_verify,
    privacy_requests_process_due,
)
from consent.services.retention import retention_hook_register, retention_purge
from consent.services.subject_export import subject_export_build
from consent.services.suppression import (
    SUPPRESSION_HOOKS,
    suppression_cache,
    suppression_create,
    suppression_hook_register,
    suppression_ingest_filter,
    suppression_remove,
)

__all__ = [
    "ERASURE_HOOKS",
    "SUPPRESSION_HOOKS",
    "ConsentFiltered",
    "ErasureHook",
    "PrivacyRequestError",
    "consent_filter_resolved",
    "consent_record",
    "consent_signals_audit",
    "consents_merge",
    "consents_unmerge",
    "erasure_hook_register",
    "erasure_sweep_and_verify",
    "privacy_request_assign",
    "privacy_request_cancel",
    "privacy_request_comment_add",
    "privacy_request_create",
    "privacy_request_export_delivered",
    "privacy_request_process",
    "privacy_request_verify",
    "privacy_requests_process_due",
    "purpose_save",
    "retention_hook_register",
    "retention_policy_save",
    "retention_purge",
    "subject_erase",
    "subject_export_build",
    "suppression_cache",
    "suppression_create",
    "suppression_hook_register",
    "suppression_ingest_filter",
    "suppression_remove",
]
