"""``manage.py import_bids PATH --study NAME [--create-study --admin USER] [--dry-run]``.

See :mod:`qsmreview.studies.bids`. The command acts as the system (an operator with shell access);
every write goes through the services, and a study it creates gets ``--admin`` as its admin.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from qsmreview.access import system
from qsmreview.errors import DomainError
from qsmreview.studies.bids import import_bids
from qsmreview.studies.models import Study
from qsmreview.studies.services.studies import study_create
from qsmreview.studies.validators import validate_single_line


class Command(BaseCommand):
    help = "Import the anatomical scans (T2* magnitude/phase, T1, FLAIR, masks) of a BIDS dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the BIDS dataset folder")
        parser.add_argument("--study", required=True, help="name of the target study")
        parser.add_argument("--create-study", action="store_true", help="create the study if missing")
        parser.add_argument(
            "--admin", metavar="USERNAME", help="with --create-study: the user who administers the new study"
        )
        parser.add_argument("--dry-run", action="store_true", help="validate and report; store nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        actor = system("manage.py import_bids")
        name = options["study"].strip()
        for option, value in (("--study", name), ("--admin", options["admin"] or "")):
            try:  # before any lookup: PostgreSQL cannot even compare text holding NUL
                validate_single_line(value)
            except ValidationError as exc:
                raise CommandError(f"{option} name: {' '.join(exc.messages)}") from exc
        study = Study.objects.filter(name=name).first()
        if study is None:
            if not options["create_study"]:
                raise CommandError(f"study {name!r} does not exist; pass --create-study to create it")
            if options["dry_run"]:
                raise CommandError(f"study {name!r} does not exist (not created in a dry run)")
            if not options["admin"]:
                raise CommandError("--create-study needs --admin USERNAME: every study has an admin")
            admin = get_user_model().objects.filter(username=options["admin"]).first()
            if admin is None:
                raise CommandError(f"no user named {options['admin']!r}")
            try:
                study = study_create(by=actor, name=name, admin=admin)
            except DomainError as exc:
                raise CommandError(exc.message) from exc
            self.stdout.write(f"created study {name!r} with admin {admin.get_username()!r}")

        def progress(items):
            return tqdm(
                items, desc="importing", unit="series", file=sys.stderr, disable=options["no_progress"] or None
            )

        try:
            report = import_bids(
                options["path"], study=study, by=actor, dry_run=options["dry_run"], progress=progress
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for line in report.summary_lines():
            self.stdout.write(line)
