"""What a training run saves and serving loads: a `Bundle`, stamped with a format version and
the hash of its training data (Paperless-ngx's classifier does the same).

A bundle holds the run's main model plus the helpers every slot needs whatever the main model
is: recent popularity (people without history or consent), trending, buy again and content
similarity (items nobody touched yet). A hybrid's own components are the same objects, saved
once. Like every fitted recommender, a bundle holds no row per person.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from recommendations.recommenders import build
from recommendations.recommenders.base import Histories, Recommender, TrainingData, history_of
from recommendations.recommenders.buy_again import BuyAgain
from recommendations.recommenders.content import ContentTfidf
from recommendations.recommenders.hybrid import Hybrid
from recommendations.recommenders.popularity import RecentPopularity, Trending

T = TypeVar("T", bound=Recommender)

# Bump when a saved bundle could no longer be read or would mean something else: runs saved
# with another version cannot serve (they are retrained instead).
FORMAT_VERSION = 1


class ArtifactFormatError(ValueError):
    pass


@dataclass
class Bundle:
    kind: str
    model: Recommender
    popularity: RecentPopularity
    trending: Trending
    buy_again: BuyAgain
    content: ContentTfidf
    item_keys: list[str]
    data_hash: str
    # How a person's history is weighted, as at training: weights and half-lives.
    weighting: dict[str, Any] = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def item_index(self) -> dict[str, int]:
        index = getattr(self, "_index", None)
        if index is None:
            index = {key: i for i, key in enumerate(self.item_keys)}
            self._index = index
        return index

    def history(
        self, records: Iterable[tuple[str, str, datetime]], *, now: datetime, group: str
    ) -> Histories:
        """One person's (item key, kind, naive UTC time) records as this model sees them."""
        return history_of(
            records,
            item_keys=self.item_keys,
            now=now,
            weighting=self.weighting,
            group=group,
            item_index=self.item_index(),
        )


def bundle_fit(*, kind: str, params: dict[str, Any], data: TrainingData, digest: str) -> Bundle:
    """Fit the main model and the helpers on all of `data`."""
    model = build(kind, params).fit(data)
    parts = model.components if isinstance(model, Hybrid) else {kind: model}
    popularity = model.cold_start if isinstance(model, Hybrid) else RecentPopularity().fit(data)
    trending = _part(parts, "trending", Trending) or Trending().fit(data)
    content = _part(parts, "content", ContentTfidf) or ContentTfidf().fit(data)
    buy_again = _part(parts, "buy_again", BuyAgain) or BuyAgain(tune=True).fit(data)
    return Bundle(
        kind=kind,
        model=model,
        popularity=popularity,
        trending=trending,
        buy_again=buy_again,
        content=content,
        item_keys=list(data.item_keys),
        data_hash=digest,
        weighting={
            "weights": dict(data.weights),
            "half_life_days": data.half_life_days,
            "repeat_half_life_days": data.repeat_half_life_days,
        },
    )


def _part(parts: dict[str, Recommender], name: str, kind: type[T]) -> T | None:
    """A fitted component of the main model that a helper can be, instead of fitting again."""
    found = parts.get(name)
    return found if isinstance(found, kind) else None


def bundle_dump(bundle: Bundle) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump(bundle, buffer)
    return zlib.compress(buffer.getvalue(), 3)


def bundle_load(raw: bytes) -> Bundle:
    import joblib

    bundle = joblib.load(io.BytesIO(zlib.decompress(raw)))
    if not isinstance(bundle, Bundle) or bundle.format_version != FORMAT_VERSION:
        found = getattr(bundle, "format_version", "unknown")
        raise ArtifactFormatError(f"artifact format {found}, this code reads {FORMAT_VERSION}")
    return bundle


def data_hash(data: TrainingData, params: dict[str, Any]) -> str:
    """Changes when the interactions, the items' texts, people's groups, the weighting or the
    parameters change; not with the clock (a retrain without new data is skipped)."""
    import numpy as np

    digest = hashlib.sha256()
    for array in (data.user_keys, data.users, data.items, data.times.astype("int64")):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(np.asarray(data.kinds).astype("S8").tobytes())
    for texts in (data.item_keys, data.item_text, data.user_group):
        digest.update("\x00".join(map(str, texts)).encode())
        digest.update(b"\x01")
    weighting = (sorted(data.weights.items()), data.half_life_days, data.repeat_half_life_days)
    digest.update(repr((weighting, sorted(params.items()))).encode())
    return digest.hexdigest()
