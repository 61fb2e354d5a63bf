"""Celery adapters: they take ids and call one service."""

from celery import shared_task

from access import services


@shared_task(acks_late=True)
def audit_chain_anchor_task() -> None:
    services.audit_chain_anchor(full=False)
