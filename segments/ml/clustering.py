"""Clustering: MiniBatchKMeans with k chosen by silhouette, checked on held-out profiles against
the serving run's k and a naive segmentation; centroids described in words."""

from __future__ import annotations

from typing import Any

from segments.ml.comparison import paired_bootstrap
from segments.ml.features import RANDOM_STATE, NotEnoughData

WORDS = {
    "recency": ("recently active", "long inactive"),
    "frequency": ("frequent buyers", "rare buyers"),
    "monetary": ("high spenders", "low spenders"),
    "events_30d": ("engaged this month", "quiet this month"),
    "events_total": ("long history", "short history"),
}


def describe_centroid(centroid: dict[str, float]) -> str:
    """A standardised centroid in words: what stands out (|z| >= 0.5), strongest first."""
    parts = []
    for name, z in sorted(centroid.items(), key=lambda item: -abs(item[1])):
        if abs(z) < 0.5:
            continue
        if name.startswith("affinity:"):
            if z > 0:
                parts.append(f"prefers {name.split(':', 1)[1]}")
            continue
        high, low = WORDS.get(name, (f"high {name}", f"low {name}"))
        # Recency is days since: a high value means inactive.
        if name == "recency":
            high, low = low, high
        parts.append(high if z > 0 else low)
    return ", ".join(parts[:4]) or "average on every feature"


def fit_clusters(
    features: Any, *, k_range: range = range(2, 9), sample: int = 5000
) -> dict[str, Any]:
    """k-means on the standardised features, k chosen by silhouette on a fixed sample."""
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    matrix = scaler.fit_transform(features.to_numpy(dtype=float))
    scores, (score, k, model, labels) = _best_k(matrix, k_range, sample)
    return {
        "model": model,
        "scaler": scaler,
        "k": k,
        "silhouette": score,
        "silhouettes": scores,
        "labels": labels,
        "summary": _summary(features, model, labels, k),
    }


def _kmeans(k: int) -> Any:
    from sklearn.cluster import MiniBatchKMeans

    return MiniBatchKMeans(n_clusters=k, random_state=RANDOM_STATE, n_init=3, batch_size=4096)


def _best_k(matrix: Any, k_range: range, sample: int) -> tuple[dict[int, float], tuple]:
    """({k: silhouette on the sample}, (best silhouette, k, fitted model, labels))."""
    import numpy as np
    from sklearn.metrics import silhouette_score

    rng = np.random.default_rng(RANDOM_STATE)
    idx = rng.choice(len(matrix), size=min(sample, len(matrix)), replace=False)
    best = None
    scores = {}
    for k in k_range:
        if k >= len(matrix):
            break
        model = _kmeans(k)
        labels = model.fit_predict(matrix)
        if len(set(labels[idx])) < 2:
            continue
        score = float(silhouette_score(matrix[idx], labels[idx]))
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, k, model, labels)
    if best is None:
        raise NotEnoughData("too few profiles to cluster")
    return scores, best


def _summary(features: Any, model: Any, labels: Any, k: int) -> list[dict[str, Any]]:
    summary = []
    for cluster in range(k):
        centroid = dict(
            zip(features.columns, model.cluster_centers_[cluster].round(3).tolist(), strict=True)
        )
        summary.append(
            {
                "id": cluster,
                "size": int((labels == cluster).sum()),
                "centroid": centroid,
                "description": describe_centroid(centroid),
            }
        )
    return summary


# The held-out check: a fixed share of the profiles (by a seeded draw) is kept out of the fit;
# the candidate, the serving run's k refitted on the same profiles and the naive baseline are
# all scored by their silhouette on the held-out ones, in the same standardised space.
HELD_OUT_SHARE = 0.2
HELD_OUT_MAX = 3000
MIN_HELD_OUT = 10
BASELINE_WORDS = "recency alone"


def validate_clusters(
    features: Any, *, serving_k: int | None, k_range: range = range(2, 9), sample: int = 5000
) -> dict[str, Any]:
    """The clustering to serve, judged where it did not learn. Returns `k` (chosen by
    silhouette on the training profiles), and either `unchecked_reason` (too few profiles to
    hold any out) or the held-out figures: `silhouette` (the candidate's), `baseline` (the
    naive segmentation's: as many groups by recency alone, what an RFM table starts from;
    None when they do not make two groups), `serving` ({"k", "silhouette"}) with the paired
    bootstrap of the per-profile silhouettes against it (`bootstrap`), and `held_out`."""
    import numpy as np
    from sklearn.preprocessing import StandardScaler

    matrix = features.to_numpy(dtype=float)
    order = np.random.default_rng(RANDOM_STATE).permutation(len(matrix))
    held = order[: min(HELD_OUT_MAX, int(len(matrix) * HELD_OUT_SHARE))]
    if len(held) < MIN_HELD_OUT:
        _, (_, k, _, _) = _best_k(StandardScaler().fit_transform(matrix), k_range, sample)
        return {
            "k": k,
            "unchecked_reason": (
                f"only {len(matrix)} profiles: a held-out check needs {MIN_HELD_OUT} held-out "
                f"profiles ({HELD_OUT_SHARE:.0%} of them)"
            ),
        }
    train = np.sort(order[len(held) :])
    scaler = StandardScaler().fit(matrix[train])
    scaled = scaler.transform(matrix)
    _, (_, k, model, _) = _best_k(scaled[train], k_range, sample)
    points = scaled[held]
    ours = _silhouettes(points, model.predict(points))
    result: dict[str, Any] = {
        "k": k,
        "held_out": len(held),
        "silhouette": _mean(ours),
        "baseline": _mean(
            _silhouettes(points, _recency_alone(scaled, list(features.columns), train, held, k))
        ),
    }
    if serving_k is not None and ours is not None:
        if serving_k == k:
            theirs = ours
        else:
            theirs = _silhouettes(points, _kmeans(serving_k).fit(scaled[train]).predict(points))
        result["serving"] = {"k": serving_k, "silhouette": _mean(theirs)}
        if theirs is not None:
            result["bootstrap"] = paired_bootstrap(ours, theirs)
    return result


def _silhouettes(points: Any, labels: Any) -> Any:
    """Per-point silhouettes; None when the labels do not make 2 to n-1 groups."""
    from sklearn.metrics import silhouette_samples

    groups = len(set(labels.tolist()))
    if not 2 <= groups <= len(points) - 1:
        return None
    return silhouette_samples(points, labels)


def _mean(values: Any) -> float | None:
    return None if values is None else float(values.mean())


def _recency_alone(scaled: Any, columns: list[str], train: Any, held: Any, k: int) -> Any:
    """k groups by recency alone (k-means on that one column: natural breaks), fitted on the
    training profiles."""
    column = [columns.index("recency")]
    return _kmeans(k).fit(scaled[train][:, column]).predict(scaled[held][:, column])
