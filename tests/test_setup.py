"""The set-up around the code: settings from the environment, scripts, Docker files, README.

Settings are imported in a fresh interpreter with a clean environment, so what is checked is what
a deployment with exactly these variables gets.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]

_PRINT_SETTINGS = (
    "import json, django; from django.conf import settings; django.setup(); "
    "print(json.dumps({'SECRET_KEY': settings.SECRET_KEY, 'DEBUG': settings.DEBUG, "
    "'ALLOWED_HOSTS': settings.ALLOWED_HOSTS, 'ENGINE': settings.DATABASES['default']['ENGINE'], "
    "'STORAGE': settings.STORAGES['default']['BACKEND'], "
    "'SESSION_COOKIE_SECURE': settings.SESSION_COOKIE_SECURE, "
    "'CACHE': settings.CACHES['default']['BACKEND'], 'LOGIN_RATE': settings.QSMREVIEW_LOGIN_RATE}))"
)


def _settings(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "qsmreview.settings",
        "QSMREVIEW_VAR_DIR": str(tmp_path / "var"),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", _PRINT_SETTINGS],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def _loaded(result: subprocess.CompletedProcess[str]) -> dict:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def _refused(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, result.stdout
    assert "ImproperlyConfigured" in result.stderr, result.stderr
    return result.stderr.strip().splitlines()[-1]


# --- settings ---------------------------------------------------------------------------------


def test_it_refuses_to_start_without_a_secret_key_outside_the_demo(tmp_path: Path) -> None:
    message = _refused(_settings(tmp_path))
    assert "SECRET_KEY is required unless DEBUG or QSMREVIEW_DEMO is on" in message


def test_it_refuses_a_boolean_it_cannot_read(tmp_path: Path) -> None:
    message = _refused(_settings(tmp_path, DEBUG="maybe", SECRET_KEY="k"))
    assert "DEBUG='maybe' is not a boolean (use true/false)" in message


def test_it_refuses_an_integer_it_cannot_read(tmp_path: Path) -> None:
    message = _refused(_settings(tmp_path, SECRET_KEY="k", QSMREVIEW_MAX_UPLOAD_BYTES="2GB"))
    assert "QSMREVIEW_MAX_UPLOAD_BYTES='2GB' is not an integer" in message


def test_it_refuses_an_unknown_storage_backend(tmp_path: Path) -> None:
    message = _refused(_settings(tmp_path, SECRET_KEY="k", STORAGE_BACKEND="ftp"))
    assert "STORAGE_BACKEND='ftp': use 'filesystem' or 's3'" in message


def test_it_refuses_s3_storage_without_a_bucket(tmp_path: Path) -> None:
    message = _refused(_settings(tmp_path, SECRET_KEY="k", STORAGE_BACKEND="s3", S3_BUCKET=""))
    assert "STORAGE_BACKEND=s3 needs S3_BUCKET" in message


def test_it_refuses_a_cache_that_is_not_redis(tmp_path: Path) -> None:
    message = _refused(_settings(tmp_path, SECRET_KEY="k", CACHE_URL="memcached://cache:11211"))
    assert "CACHE_URL must be a redis:// or rediss:// URL, got 'memcached://cache:11211'" in message


@pytest.mark.parametrize("rate", ["10", "ten/minute", "0/minute", "10/fortnight"])
def test_it_refuses_a_login_rate_it_cannot_read(tmp_path: Path, rate: str) -> None:
    message = _refused(_settings(tmp_path, SECRET_KEY="k", QSMREVIEW_LOGIN_RATE=rate))
    assert f"QSMREVIEW_LOGIN_RATE must look like 10/minute (n/second|minute|hour|day), got {rate!r}" in message


def test_it_shares_the_cache_through_redis_when_asked(tmp_path: Path) -> None:
    loaded = _loaded(_settings(tmp_path, SECRET_KEY="k", CACHE_URL="redis://cache:6379/2", QSMREVIEW_LOGIN_RATE="5/hour"))
    assert loaded["CACHE"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["LOGIN_RATE"] == "5/hour"
    assert _loaded(_settings(tmp_path, SECRET_KEY="k"))["CACHE"] == "django.core.cache.backends.locmem.LocMemCache"


def test_it_refuses_an_unreadable_secret_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = _refused(_settings(tmp_path, SECRET_KEY_FILE=str(missing)))
    assert f"SECRET_KEY_FILE='{missing}' cannot be read" in message


def test_it_reads_the_secret_key_from_a_file(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("from-a-file\n")
    loaded = _loaded(_settings(tmp_path, SECRET_KEY_FILE=str(secret)))
    assert loaded["SECRET_KEY"] == "from-a-file"
    assert loaded["DEBUG"] is False
    assert loaded["ALLOWED_HOSTS"] == []
    assert loaded["SESSION_COOKIE_SECURE"] is True


def test_it_runs_the_demo_on_embedded_defaults_without_configuration(tmp_path: Path) -> None:
    loaded = _loaded(_settings(tmp_path, QSMREVIEW_DEMO="1"))
    assert loaded["SECRET_KEY"]
    assert loaded["ENGINE"] == "django.db.backends.sqlite3"
    assert loaded["STORAGE"] == "django.core.files.storage.FileSystemStorage"
    assert "localhost" in loaded["ALLOWED_HOSTS"]
    assert (tmp_path / "var" / "broker" / "queue").is_dir()


def test_it_selects_postgresql_and_s3_from_the_environment(tmp_path: Path) -> None:
    loaded = _loaded(
        _settings(
            tmp_path,
            SECRET_KEY="k",
            DATABASE_URL="postgres://u:p@db.example:5432/qsm",
            STORAGE_BACKEND="s3",
            S3_BUCKET="bucket",
        )
    )
    assert loaded["ENGINE"] == "django.db.backends.postgresql"
    assert loaded["STORAGE"] == "storages.backends.s3.S3Storage"


# --- scripts ----------------------------------------------------------------------------------

SCRIPTS = ["scripts/start", "scripts/test", "scripts/vendor", ".ci/run"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_it_ships_executable_scripts_that_parse(script: str) -> None:
    path = ROOT / script
    assert os.access(path, os.X_OK), f"{script} is not executable"
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_it_pins_niivue_exactly() -> None:
    package = json.loads((ROOT / "frontend" / "package.json").read_text())
    lock = json.loads((ROOT / "frontend" / "package-lock.json").read_text())
    assert package["dependencies"]["@niivue/niivue"] == "0.69.0"
    assert lock["packages"]["node_modules/@niivue/niivue"]["version"] == "0.69.0"


def test_it_vendors_niivue_as_a_module_without_a_source_map_reference() -> None:
    vendored = ROOT / "frontend" / "static" / "vendor" / "niivue" / "index.js"
    if not vendored.exists():
        pytest.skip("NiiVue not vendored: scripts/test runs scripts/vendor")
    text = vendored.read_text()
    assert "sourceMappingURL=" not in text
    assert re.search(r"^export\s*\{", text, re.M), "index.js is not an ES module"


# --- Docker -----------------------------------------------------------------------------------


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())


def test_it_describes_the_production_services() -> None:
    services = _compose()["services"]
    assert set(services) == {"db", "redis", "web", "worker", "beat"}
    assert services["db"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["web"]["command"] == ["web"]
    assert services["worker"]["command"] == ["worker"]
    assert services["beat"]["command"] == ["beat"]


def test_it_lets_workers_scale() -> None:
    worker = _compose()["services"]["worker"]
    assert "container_name" not in worker
    assert "ports" not in worker
    assert "media:/data" in worker["volumes"]


def test_it_configures_every_app_container_from_the_environment() -> None:
    services = _compose()["services"]
    for name in ("web", "worker", "beat"):
        env = services[name]["environment"]
        assert env["DEBUG"] == "false"
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["CELERY_BROKER_URL"].startswith("redis://redis:6379/")
        for key in ("SECRET_KEY", "ALLOWED_HOSTS", "CSRF_TRUSTED_ORIGINS", "STORAGE_BACKEND"):
            assert key in env, f"{name} lacks {key}"


def test_it_builds_the_image_from_paths_that_exist() -> None:
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    sources = []
    for line in dockerfile.splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            sources += words[1:-1]
    assert sources, "no COPY lines found"
    for source in sources:
        assert (ROOT / source).exists(), f"Dockerfile copies {source}, which does not exist"
    assert "USER qsmreview" in dockerfile
    assert "FROM python:3.11-slim" in dockerfile


def test_it_has_an_entrypoint_that_parses() -> None:
    result = subprocess.run(
        ["sh", "-n", str(ROOT / "docker" / "entrypoint.sh")], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


# --- README -----------------------------------------------------------------------------------


def _settings_variables() -> set[str]:
    source = (ROOT / "qsmreview" / "settings.py").read_text()
    return set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', source))


def test_it_documents_every_setting_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    variables = _settings_variables()
    assert {"SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "STORAGE_BACKEND"} <= variables
    missing = sorted(v for v in variables if f"`{v}`" not in readme)
    assert not missing, f"README.md does not document: {', '.join(missing)}"


def test_it_starts_the_readme_with_the_two_commands() -> None:
    head = (ROOT / "README.md").read_text()[:1500]
    assert "scripts/start" in head
    assert "scripts/test" in head


# --- CI guards (tests/fixtures/ci.py) ---------------------------------------------------------

_GUARDED_SUITE = '''
import pytest

@pytest.mark.worker
def test_needs_a_worker():
    pytest.skip("no worker could start")

def test_plain():
    pass
'''


def _run_guarded_suite(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    worker: w\n    browser: b\n"
    )
    (tmp_path / "test_guarded.py").write_text(_GUARDED_SUITE)
    clean = {k: v for k, v in os.environ.items() if k not in {"CI", "QSMREVIEW_REQUIRE_MARKERS"}}
    clean["PYTHONPATH"] = str(ROOT)
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:django", "-p", "no:cacheprovider",
         "-p", "tests.fixtures.ci", "-c", str(tmp_path / "pytest.ini"),
         str(tmp_path / "test_guarded.py"), "-q", "-rA"],
        cwd=tmp_path, env=clean, capture_output=True, text=True, timeout=120,
    )


def test_it_lets_a_worker_test_skip_outside_ci(tmp_path: Path) -> None:
    result = _run_guarded_suite(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "1 passed, 1 skipped" in result.stdout


def test_it_fails_a_skipped_worker_test_under_ci(tmp_path: Path) -> None:
    result = _run_guarded_suite(tmp_path, CI="true")
    assert result.returncode == 1, result.stdout
    assert "worker test skipped under CI=true, which must not happen: no worker could start" in result.stdout


def test_it_fails_a_ci_run_in_which_no_test_of_a_required_marker_passed(tmp_path: Path) -> None:
    result = _run_guarded_suite(tmp_path, QSMREVIEW_REQUIRE_MARKERS="browser")
    assert result.returncode == 1, result.stdout
    assert "QSMREVIEW_REQUIRE_MARKERS: no passing test marked browser (browser: 0 passed)" in result.stdout


def test_it_links_only_files_that_exist_from_the_readmes() -> None:
    for readme in (ROOT / "README.md", ROOT / "docker" / "README.md"):
        for target in re.findall(r"\]\(([^)#:]+)\)", readme.read_text()):
            assert (readme.parent / target).exists(), f"{readme.name} links {target}, which is missing"
