#!/bin/sh
# Entry point of the qsmreview image. The first argument picks the process:
#
#   web      migrate the database (unless MIGRATE_ON_START=false), then gunicorn on :8000
#   worker   a Celery worker (scale with `docker compose up --scale worker=N`)
#   beat     Celery beat: the periodic sweep of jobs whose worker died
#   manage   python manage.py ... (e.g. `manage createsuperuser`, `manage load_demo`)
#   anything else is run as given.
set -eu

case "${1:-web}" in
web)
    shift || true
    if [ "${MIGRATE_ON_START:-true}" = "true" ]; then
        python /app/manage.py migrate --noinput
    fi
    exec gunicorn qsmreview.wsgi:application \
        --bind "0.0.0.0:${PORT:-8000}" \
        --workers "${WEB_CONCURRENCY:-3}" --threads "${GUNICORN_THREADS:-4}" \
        --timeout "${GUNICORN_TIMEOUT:-600}" --worker-tmp-dir /dev/shm \
        --access-logfile - --error-logfile - "$@"
    ;;
worker)
    shift || true
    # The worker writes this file once it consumes messages (see qsmreview/jobs/tasks.py): the
    # compose health check reads it.
    export QSMREVIEW_WORKER_READY_FILE="${QSMREVIEW_WORKER_READY_FILE:-/tmp/worker-ready}"
    exec celery -A qsmreview worker --loglevel "${LOG_LEVEL:-INFO}" \
        --concurrency "${CELERY_CONCURRENCY:-2}" -n "worker@%h" "$@"
    ;;
beat)
    shift || true
    exec celery -A qsmreview beat --loglevel "${LOG_LEVEL:-INFO}" \
        --schedule /tmp/celerybeat-schedule "$@"
    ;;
manage)
    shift
    exec python /app/manage.py "$@"
    ;;
*)
    exec "$@"
    ;;
esac
