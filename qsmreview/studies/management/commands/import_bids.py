"""``manage.py import_bids PATH --study NAME [--create-study] [--dry-run]``: see :mod:`qsmreview.studies.bids`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from qsmreview.errors import DomainError
from qsmreview.studies.bids import import_bids
from qsmreview.studies.models import Study


class Command(BaseCommand):
    help = "Import the anatomical scans (T2* magnitude/phase, T1, FLAIR, masks) of a BIDS dataset."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="the BIDS dataset folder")
        parser.add_argument("--study", required=True, help="name of the target study")
        parser.add_argument("--create-study", action="store_true", help="create the study if missing")
        parser.add_argument("--dry-run", action="store_true", help="validate and report; store nothing")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args: Any, **options: Any) -> None:
        name = options["study"].strip()
        study = Study.objects.filter(name=name).first()
        if study is None:
            if not options["create_study"]:
                raise CommandError(f"study {name!r} does not exist; pass --create-study to create it")
            if options["dry_run"]:
                raise CommandError(f"study {name!r} does not exist (not created in a dry run)")
            study = Study(name=name)
            try:  # the model's validators (e.g. no control characters in the name)
                study.full_clean(validate_unique=False, validate_constraints=False)
            except ValidationError as exc:
                raise CommandError(
                    "; ".join(f"study {f}: {' '.join(m)}" for f, m in exc.message_dict.items())
                ) from exc
            study.save()
            self.stdout.write(f"created study {name!r}")

        def progress(items):
            return tqdm(
                items, desc="importing", unit="series", file=sys.stderr, disable=options["no_progress"] or None
            )

        try:
            report = import_bids(options["path"], study=study, dry_run=options["dry_run"], progress=progress)
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        for line in report.summary_lines():
            self.stdout.write(line)
