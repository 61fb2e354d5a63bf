"""Clustering: MiniBatchKMeans with k chosen by silhouette; centroids described in words."""

from __future__ import annotations

from typing import Any

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
    import numpy as np
    from sklearn.cluster import MiniBatchKMeans
    from sklearn.metrics import silhouette_score
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler()
    matrix = scaler.fit_transform(features.to_numpy(dtype=float))
    rng = np.random.default_rng(RANDOM_STATE)
    idx = rng.choice(len(matrix), size=min(sample, len(matrix)), replace=False)
    best = None
    scores = {}
    for k in k_range:
        if k >= len(matrix):
            break
        model = MiniBatchKMeans(n_clusters=k, random_state=RANDOM_STATE, n_init=3, batch_size=4096)
        labels = model.fit_predict(matrix)
        if len(set(labels[idx])) < 2:
            continue
        score = float(silhouette_score(matrix[idx], labels[idx]))
        scores[k] = score
        if best is None or score > best[0]:
            best = (score, k, model, labels)
    if best is None:
        raise NotEnoughData("too few profiles to cluster")
    score, k, model, labels = best
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
    return {
        "model": model,
        "scaler": scaler,
        "k": k,
        "silhouette": score,
        "silhouettes": scores,
        "labels": labels,
        "summary": summary,
    }
