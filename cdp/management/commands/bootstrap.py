"""What `make run` does after migrating: an admin login, a demo source and demo data."""

import os
import secrets

from allauth.account.models import EmailAddress
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q

from access.models import Source
from access.roles import ADMIN
from access.services import source_create
from profiles.models import Event, Profile

ADMIN_EMAIL = "admin@example.com"
DEMO_SOURCE = "Demo website"


class Command(BaseCommand):
    help = (
        "Prepare a fresh installation: an admin login (admin@example.com; password from "
        "CDP_ADMIN_PASSWORD or random, printed), a 'Demo website' source, and demo data when "
        "the database holds no profiles or events. Safe to run again."
    )

    def add_arguments(self, parser):
        parser.add_argument("--profiles", type=int, default=300, help="demo people to load")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--no-demo", action="store_true", help="do not load demo data")

    def handle(self, *args, profiles: int, seed: int, no_demo: bool, **options):
        login = self._admin_login()
        if not Source.objects.filter(name=DEMO_SOURCE).exists():
            issued = source_create(name=DEMO_SOURCE)
            self.stdout.write(f"Created source {DEMO_SOURCE!r}; its write key: {issued.key}")
        if no_demo:
            pass
        elif Profile.objects.exists() or Event.objects.exists():
            self.stdout.write("The database already holds data: no demo data loaded.")
        else:
            self.stdout.write(f"Loading demo data ({profiles} people)...")
            call_command("seed_demo", profiles=profiles, seed=seed, source=DEMO_SOURCE)
        url = settings.SITE_URL.rstrip("/") + "/"
        bar = "=" * 64
        self.stdout.write(f"\n{bar}\n  Open {url}\n  {login}\n{bar}\n")

    @transaction.atomic
    def _admin_login(self) -> str:
        existing = User.objects.filter(Q(email__iexact=ADMIN_EMAIL) | Q(username="admin")).first()
        if existing is not None:
            return f"Log in as {existing.email} (existing account; password unchanged)"
        password = os.environ.get("CDP_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
        user = User.objects.create_superuser(username="admin", email=ADMIN_EMAIL, password=password)
        user.groups.add(Group.objects.get(name=ADMIN))
        EmailAddress.objects.create(user=user, email=ADMIN_EMAIL, verified=True, primary=True)
        return f"Log in as {ADMIN_EMAIL} with password {password}"
