"""``manage.py sweep_storage``: delete series and annotation files that no row references (what beat runs hourly)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from qsmreview.studies.services.orphans import storage_sweep_orphans


class Command(BaseCommand):
    help = (
        "Delete stored series and annotation-mask files that no row references (left by a rolled-back "
        "transaction or a killed process) and that are older than the grace period."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--dry-run", action="store_true", help="list the orphans, delete nothing")
        parser.add_argument(
            "--grace-seconds",
            type=int,
            default=None,
            help="keep files younger than this (default: QSMREVIEW_ORPHAN_GRACE_SECONDS, 3600)",
        )

    def handle(self, *args: Any, dry_run: bool = False, grace_seconds: int | None = None, **options: Any) -> None:
        if grace_seconds is not None and grace_seconds < 0:
            raise CommandError("--grace-seconds must not be negative")
        grace = None if grace_seconds is None else timedelta(seconds=grace_seconds)
        sweep = storage_sweep_orphans(grace=grace, dry_run=dry_run)
        verb = "would delete" if dry_run else "deleted"
        for name in sweep.orphans:
            self.stdout.write(f"{verb} {name}")
        if sweep.too_young:
            self.stdout.write(f"kept {len(sweep.too_young)} file(s) with no row, younger than the grace period")
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb} {len(sweep.orphans)} orphan file(s), {sweep.orphan_bytes / 1e6:.1f} MB; "
                f"{sweep.referenced} file(s) referenced by series and revisions"
            )
        )
