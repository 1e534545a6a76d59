"""Benchmark the PI statistics page (issue 18: the page for 10,000 lesions in 500 patients served
in <= 0.5 s; the analysis alone <= 0.2 s).

Run from the project root::

    .venv/bin/python benchmarks/reports.py                       # 10,000 lesions, 500 patients
    .venv/bin/python benchmarks/reports.py --lesions 400 --patients 20 --runs 2

A throw-away SQLite database (test settings, migrated): a study with 500 subjects, the seeded
synthetic table of ``benchmarks/stats.py`` imported as a lesion table (the import service, its
row checks included), and its statistics snapshot computed (the ``statistics`` job's work, timed
once). Then, as the study's PI through Django's test client (the whole request: middleware,
session, ORM reads, template or JSON rendering), median / min / max of ``--runs`` requests after
a warm-up: the dashboard page (Table 3 from the snapshot, Table 1, the figures' data for every
lesion), the statistics API (JSON), the lesion table CSV; and the analysis alone on the same rows.
Figures only: nothing here is a pass/fail test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.stats import synthetic_rows, timed  # noqa: E402

TARGET_PAGE_S = 0.5
TARGET_ANALYSIS_S = 0.2


def _setup_django(workdir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="qsmreview.test_settings",
        QSMREVIEW_VAR_DIR=str(workdir / "var"),
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}",
        MEDIA_ROOT=str(workdir / "media"),
        CELERY_BROKER_URL=f"filesystem://localhost/{workdir / 'broker'}",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


def _line(name: str, seconds: list[float], *, size: int | None = None) -> str:
    ms = [1000 * s for s in seconds]
    extra = f"; {size / 2**20:.2f} MiB" if size is not None else ""
    return f"{name}: median {statistics.median(ms):.1f} ms (min {min(ms):.1f}, max {max(ms):.1f}; {len(ms)} runs{extra})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lesions", type=int, default=10_000)
    parser.add_argument("--patients", type=int, default=500)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="qsmreview-reports-") as tmp:
        _setup_django(Path(tmp))
        from django.contrib.auth import get_user_model
        from django.test import Client

        from qsmreview.access import system
        from qsmreview.reports.services import lesion_table_import, statistics_compute
        from qsmreview.stats.analysis import analyse
        from qsmreview.stats.table import format_table, parse_table
        from qsmreview.studies.models import Membership, Study, Subject

        rows = synthetic_rows(args.lesions, args.patients, seed=args.seed)
        users = get_user_model().objects
        admin, pi = users.create_user("bench_admin"), users.create_user("bench_pi")
        study = Study.objects.create(name="benchmark study")
        Membership.objects.create(study=study, user=admin, role="admin")
        Membership.objects.create(study=study, user=pi, role="pi")
        Subject.objects.bulk_create(Subject(study=study, code=c) for c in sorted({r.subject for r in rows}))
        text = format_table(rows)
        print(f"table: {args.lesions:,} lesions, {args.patients} patients, {len(rows):,} rows, "
              f"{len(text) / 2**20:.2f} MiB CSV; load average {', '.join(f'{x:.1f}' for x in os.getloadavg())}")

        started = time.perf_counter()
        lesion_table_import(by=admin, study=study, name="bench.csv", content=text.encode())
        print(f"import (checks + store): {1000 * (time.perf_counter() - started):.1f} ms")
        started = time.perf_counter()
        snapshot = statistics_compute(by=system("benchmark"), study=study, force=True)
        print(f"statistics job's work (read table + analyse + store snapshot): "
              f"{1000 * (time.perf_counter() - started):.1f} ms (analysis {1000 * snapshot.compute_seconds:.1f} ms)")

        client = Client()
        client.force_login(pi)
        sizes: dict[str, int] = {}

        def get(url: str) -> None:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            sizes[url] = len(response.content)

        page = f"/studies/{study.pk}/reports/"
        for name, url in (
            ("dashboard page (served)", page),
            ("statistics API, JSON (served)", f"/api/v1/studies/{study.pk}/statistics/"),
            ("lesion table CSV (served)", f"/api/v1/studies/{study.pk}/lesion-table/csv/"),
        ):
            wall, _ = timed(lambda url=url: get(url), args.runs)
            print(_line(name, wall, size=sizes[url]))
            if url == page:
                page_median = statistics.median(wall)
        table = parse_table(text)
        wall, _ = timed(lambda: analyse(table), args.runs)
        print(_line("analysis alone (analyse)", wall))
        analysis_median = statistics.median(wall)
        print(f"targets: page <= {1000 * TARGET_PAGE_S:.0f} ms: {'met' if page_median <= TARGET_PAGE_S else 'NOT met'}; "
              f"analysis <= {1000 * TARGET_ANALYSIS_S:.0f} ms: {'met' if analysis_median <= TARGET_ANALYSIS_S else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
