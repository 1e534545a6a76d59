"""``manage.py load_demo``: load (or complete) the demo study and print its logins."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from qsmreview.studies.demo import demo_load, demo_logins_text


class Command(BaseCommand):
    help = (
        "Create the demo users and the study 'Demo: MS 7T QSM' with three synthetic MS subjects "
        "and every kind of series. Idempotent: what exists is kept."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset-passwords",
            action="store_true",
            help="set the demo users' passwords back to the printed ones",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        result = demo_load(
            reset_passwords=options["reset_passwords"], progress=self.stdout.write
        )
        took = time.monotonic() - started
        if result.created_anything:
            self.stdout.write(
                self.style.SUCCESS(
                    f"Demo study {result.study.name!r} (id {result.study.pk}) loaded in {took:.1f} s: "
                    f"{len(result.users_created)} user(s), {len(result.subjects_created)} subject(s), "
                    f"{result.series_created} series, {result.assignments_created} assignment(s) and "
                    f"{len(result.annotations_submitted)} submitted annotation(s) added."
                )
            )
        else:
            self.stdout.write(
                f"Demo study {result.study.name!r} (id {result.study.pk}) already complete; nothing added."
            )
        self.stdout.write(demo_logins_text())
        if not (result.users_created or options["reset_passwords"]):
            self.stdout.write(
                "  (existing users keep their passwords; --reset-passwords restores these)"
            )
