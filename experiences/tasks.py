"""Celery adapters (STYLE rule 6): idempotent, they call one service."""

from celery import shared_task

from experiences import services


@shared_task(acks_late=True)
def experience_bandits_refresh_task() -> None:
    services.experience_bandits_refresh()
