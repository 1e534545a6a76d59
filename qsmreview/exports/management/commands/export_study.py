"""``manage.py export_study STUDY --out PATH [--zip] [--overwrite] [--as-user USERNAME]``.

Writes the study's BIDS derivatives dataset through :func:`qsmreview.exports.services.study_export`
(docs/export.md). Without ``--as-user`` the command acts as the system (an operator with shell
access); with it, as that user, whose rights then apply (a rater gets "no such study"). Progress
goes to stderr, the summary to stdout; a refusal exits with status 1 and its message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from qsmreview.access import system
from qsmreview.errors import DomainError
from qsmreview.exports.services import study_export, user_for_export
from qsmreview.studies.validators import validate_single_line


class Command(BaseCommand):
    help = (
        "Export a study's QSM, consensus lesions, reference ROIs and lesion table as a BIDS derivatives "
        "dataset (a folder, or a zip with --zip), written atomically."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("study", help="the study's id or name")
        parser.add_argument("--out", required=True, type=Path, help="the folder (or .zip file) to create")
        parser.add_argument("--zip", action="store_true", help="write one zip file instead of a folder")
        parser.add_argument("--overwrite", action="store_true", help="replace an existing --out")
        parser.add_argument(
            "--as-user", metavar="USERNAME", help="act as this user (their rights apply) instead of the system"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        for option, value in (("STUDY", options["study"]), ("--as-user", options["as_user"] or "")):
            try:  # before any lookup: PostgreSQL cannot even compare text holding NUL
                validate_single_line(value)
            except ValidationError as exc:
                raise CommandError(f"{option}: {' '.join(exc.messages)}") from exc
        try:
            actor = user_for_export(options["as_user"]) if options["as_user"] else system("manage.py export_study")
            report = study_export(
                by=actor,
                study=options["study"].strip(),
                out=options["out"],
                as_zip=options["zip"],
                overwrite=options["overwrite"],
                progress=lambda line: self.stderr.write(line),
            )
        except DomainError as exc:
            raise CommandError(exc.message) from exc
        except OSError as exc:
            raise CommandError(f"cannot write {options['out']}: {exc}") from exc
        self.stdout.write(
            f"exported {len(report.sessions)} session(s) of {len(report.subjects)} subject(s), "
            f"{report.n_lesion_rows} lesion row(s), {len(report.files)} file(s) to {report.path}"
        )
        for code, label in sorted(report.subjects.items()):
            if code != label:
                self.stdout.write(f"  subject {code!r} -> sub-{label}")
        for (code, session), label in sorted(report.sessions.items()):
            if session != label:
                self.stdout.write(f"  session {code!r}/{session!r} -> ses-{label}")
