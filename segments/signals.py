"""Signals other apps listen to (campaigns fire on enter/exit).

`segment_membership_changed` is sent after the transaction that recorded the changes has
committed, once per segment and batch, with keyword arguments:
    segment: Segment, entered: list[int] (profile ids), exited: list[int], cause: str, at: datetime
Receivers must be quick or queue their own task; they must not assume a single profile.
"""

from django.dispatch import Signal

segment_membership_changed = Signal()
