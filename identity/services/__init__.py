"""Writes: exact identity resolution, profile merges and their undoing, review decisions,
erasure.

Modules: `keys` (advisory locks on identity keys, an event's keys), `resolution` (the pipeline
stage: events to profiles), `merge` (one merge or a batch, snapshots, the survivor rule,
unmerge), `decisions` (staff decisions on suggested pairs, match settings), `rescan` (fuzzy
matching over the database's profiles, and its jobs) and `erasure` (identity's part of a privacy
erasure). Everything public is importable from here.
"""

from identity.services.decisions import (
    DecisionError,
    candidate_decide,
    candidates_decide,
    match_settings_update,
)
from identity.services.erasure import identities_erase
from identity.services.keys import identity_keys_lock
from identity.services.merge import (
    PlannedMerge,
    merge_survivor_choose,
    profile_merge,
    profile_snapshot,
    profile_unmerge,
    profiles_merge,
    profiles_merge_batch,
    survivor_order,
)
from identity.services.rescan import (
    RescanBusyError,
    RescanSummary,
    identity_rescan,
    rescan_job_create,
    rescan_job_run,
)
from identity.services.resolution import identity_resolve

__all__ = [
    "DecisionError",
    "PlannedMerge",
    "RescanBusyError",
    "RescanSummary",
    "candidate_decide",
    "candidates_decide",
    "identities_erase",
    "identity_keys_lock",
    "identity_rescan",
    "identity_resolve",
    "match_settings_update",
    "merge_survivor_choose",
    "profile_merge",
    "profile_snapshot",
    "profile_unmerge",
    "profiles_merge",
    "profiles_merge_batch",
    "rescan_job_create",
    "rescan_job_run",
    "survivor_order",
]
