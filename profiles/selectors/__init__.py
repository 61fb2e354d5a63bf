"""Reads of profiles, their timelines and sources, with their joins chosen here (STYLE.md rule
3), one module per concern; the names views and APIs use are importable from here.

- `profiles`: the API's filtered list, one profile, its survivor, its computed features;
- `timeline`: a profile's events by keyset pages;
- `search`: the explorer's search box;
- `detail`: the labelled rows of the profile 360° page;
- `sources`: sources with their counts, quarantined messages;
- `imports`: bulk imports of profiles and events;
- `money`: currency rates and the revenue kept apart for want of one.
"""

from profiles.selectors.detail import profile_context_rows, profile_feature_rows
from profiles.selectors.imports import data_import_get, data_imports_recent
from profiles.selectors.money import UnconvertedRevenue, currency_rates_list, unconverted_revenue
from profiles.selectors.profiles import (
    MAX_TRAIT_PATH_DEPTH,
    ProfileFilters,
    json_column,
    profile_computed_features,
    profile_get,
    profile_list,
    profile_survivor,
)
from profiles.selectors.search import (
    SORTS,
    ExplorerFilters,
    SearchTooSlowError,
    profile_search_page,
)
from profiles.selectors.sources import (
    quarantine_list,
    source_latest_events,
    source_overview,
    sources_overview,
    tracking_plan_inferred,
)
from profiles.selectors.timeline import profile_events, profile_timeline

__all__ = [
    "MAX_TRAIT_PATH_DEPTH",
    "SORTS",
    "ExplorerFilters",
    "ProfileFilters",
    "SearchTooSlowError",
    "UnconvertedRevenue",
    "currency_rates_list",
    "data_import_get",
    "data_imports_recent",
    "json_column",
    "profile_computed_features",
    "profile_context_rows",
    "profile_events",
    "profile_feature_rows",
    "profile_get",
    "profile_list",
    "profile_search_page",
    "profile_survivor",
    "profile_timeline",
    "quarantine_list",
    "source_latest_events",
    "source_overview",
    "sources_overview",
    "tracking_plan_inferred",
    "unconverted_revenue",
]
