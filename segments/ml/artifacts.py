"""Saved artifacts carry a format version; runs carry the hash of their training data."""

from __future__ import annotations

import hashlib
import io
from typing import Any

FORMAT_VERSION = 1


def data_hash(*frames: Any) -> str:
    import pandas as pd

    digest = hashlib.sha256()
    for frame in frames:
        if frame is not None and not frame.empty:
            digest.update(pd.util.hash_pandas_object(frame, index=True).to_numpy().tobytes())
    return digest.hexdigest()


def dump_artifact(payload: dict[str, Any]) -> bytes:
    import joblib

    buffer = io.BytesIO()
    joblib.dump({"format_version": FORMAT_VERSION, **payload}, buffer)
    return buffer.getvalue()


def load_artifact(raw: bytes) -> dict[str, Any]:
    """A saved artifact's payload; ValueError when it was saved in another format."""
    import joblib

    payload = joblib.load(io.BytesIO(raw))
    if not isinstance(payload, dict) or payload.get("format_version") != FORMAT_VERSION:
        found = payload.get("format_version") if isinstance(payload, dict) else "unknown"
        raise ValueError(f"artifact format {found}, this code reads {FORMAT_VERSION}")
    return payload
