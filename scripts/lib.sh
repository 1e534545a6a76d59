# Shared steps of scripts/start, scripts/test and .ci/run. Source it; it defines functions only.
#
# Every step is idempotent and cheap when nothing changed: the virtualenv and node_modules are
# reinstalled only when pyproject.toml / package-lock.json change (a stamp records what was
# installed from which file content).

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${QSMREVIEW_VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
warn() { printf '\033[33mwarning: %s\033[0m\n' "$*" >&2; }
die() { printf '\033[31merror: %s\033[0m\n' "$*" >&2; exit 1; }

_hash() { sha256sum "$@" | sha256sum | cut -c1-16; }

# Run a command as root: directly when we are root, through sudo otherwise.
as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"
    elif command -v sudo >/dev/null; then sudo "$@"
    else die "need root to run: $* (install it yourself, or run as root)"
    fi
}

# The Python that builds the virtualenv: $PYTHON, else python3.11, else python3; must be >= 3.11.
_base_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null || continue
        if "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"; return 0
        fi
    done
    die "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
}

# ensure_venv EXTRAS: create .venv and install the project (editable) with the given extras, e.g.
# "prod" or "test,prod". Skipped when the same pyproject.toml was installed with these extras.
ensure_venv() {
    local extras="$1" stamp="$VENV/.qsmreview-installed" want have_hash have_extras e missing=""
    want="$(_hash "$ROOT/pyproject.toml")"
    if [ ! -x "$PY" ]; then
        local base; base="$(_base_python)"
        log "creating virtualenv $VENV with $($base --version)"
        "$base" -m venv "$VENV" || die "python -m venv failed (on Debian: apt-get install python3-venv)"
    fi
    if [ -f "$stamp" ]; then
        read -r have_hash have_extras <"$stamp" || true
        if [ "$have_hash" = "$want" ]; then
            for e in ${extras//,/ }; do
                case ",$have_extras," in *",$e,"*) ;; *) missing=1 ;; esac
            done
            [ -z "$missing" ] && return 0
            extras="$have_extras,$extras"   # keep what was installed before
        fi
    fi
    extras="$(tr ',' '\n' <<<"$extras" | sed '/^$/d' | sort -u | paste -sd, -)"
    log "installing Python dependencies (.[${extras}]) into $VENV"
    "$PY" -m pip install -qq --disable-pip-version-check --upgrade pip
    "$PY" -m pip install -qq --disable-pip-version-check -e "$ROOT[$extras]" \
        || die "pip install failed"
    echo "$want $extras" >"$stamp"
}

# ensure_frontend: `npm ci` in frontend/ (when package-lock.json changed), then copy NiiVue and Vega.
ensure_frontend() {
    local fe="$ROOT/frontend" stamp="$ROOT/frontend/node_modules/.qsmreview-installed" want
    command -v npm >/dev/null || die "npm is needed (Node.js 20 or newer: apt-get install nodejs npm)"
    want="$(_hash "$fe/package.json" "$fe/package-lock.json")"
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "installing front-end packages (npm ci)"
        (cd "$fe" && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci failed"
        echo "$want" >"$stamp"
    fi
    "$ROOT/scripts/vendor"
}

# ensure_chromium: Debian's Chromium at /usr/bin/chromium for the browser tests.
ensure_chromium() {
    [ -x /usr/bin/chromium ] && return 0
    log "installing Debian's chromium (browser tests)"
    export DEBIAN_FRONTEND=noninteractive
    if ! as_root apt-get install -y --no-install-recommends chromium >/dev/null 2>&1; then
        as_root apt-get update -qq || die "apt-get update failed"
        as_root apt-get install -y --no-install-recommends chromium >/dev/null \
            || die "apt-get install chromium failed"
    fi
    [ -x /usr/bin/chromium ] || die "/usr/bin/chromium is still missing after apt-get install"
}

manage() { "$PY" "$ROOT/manage.py" "$@"; }
