"""Where the recommender's online outcome comes from: the apps that render recommendations
where people can click them (campaign emails) count, per model run, the blocks they rendered
and how many of those a person clicked. They live above this app, so they register a source
here (`CampaignsConfig.ready`) instead of being imported.

A source is `(run_id) -> (impressions, clicks)`; the drift check adds up every source.
"""

from __future__ import annotations

from collections.abc import Callable

OutcomeSource = Callable[[int], tuple[int, int]]

_SOURCES: dict[str, OutcomeSource] = {}


def outcome_source_register(*, name: str, source: OutcomeSource) -> None:
    _SOURCES[name] = source


def run_outcome(*, run_id: int) -> tuple[int, int]:
    """(impressions, clicks) of one run's recommendations, over every registered source."""
    impressions = clicks = 0
    for source in _SOURCES.values():
        shown, clicked = source(run_id)
        impressions, clicks = impressions + shown, clicks + clicked
    return impressions, clicks
