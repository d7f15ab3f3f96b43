# Helpers sourced by the launch lab's scripts (slurm.sh, hosts.sh, lab.sh); not meant to be run.

# Everything the lab generates lives under one folder, so that tests and users find kt-mpirun, the hostfile and the
# daemons' logs in the same place whichever script wrote them.
KT_LAB_DIR="${KT_LAB_DIR:-${TMPDIR:-/tmp}/kt-lab}"
LAB_HOME="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

say() { echo "${LAB_NAME:-lab}: $*"; }
warn() { echo "${LAB_NAME:-lab}: $*" >&2; }
die() { warn "error: $*"; exit 1; }

need_root() {
    # Daemons as root, namespaces, /etc/slurm and apt: nothing here works for an ordinary user.
    [ "$(id -u)" -eq 0 ] || die "run as root (it starts daemons, creates network namespaces and may apt-get install)"
}

# True when pid $1 exists and is not a zombie (a daemon that died but is not reaped yet counts as dead).
pid_alive() {
    [ -n "${1:-}" ] && [ -r "/proc/$1/status" ] || return 1
    local state
    state="$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null)" || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# The pid in file $1 if it names a live process (named $2, when given: a stale file's pid may have been reused by
# another program, which a stop must not kill), else nothing and status 1.
pid_from() {
    local pid
    [ -s "$1" ] || return 1
    pid="$(tr -dc 0-9 < "$1")"
    pid_alive "$pid" || return 1
    [ -z "${2:-}" ] || [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] || return 1
    echo "$pid"
}

# Live (non-zombie) processes named exactly $1, one pid a line; status 1 when there is none.
live_named() {
    local pid found=1
    for pid in $(pgrep -x "$1" || true); do
        pid_alive "$pid" && { echo "$pid"; found=0; }
    done
    return $found
}

# Sends TERM to pid $1, waits up to $2 tenths of a second (default 50), then KILL: no daemon outlives a stop.
stop_pid() {
    local pid="$1" tries="${2:-50}"
    [ -n "$pid" ] || return 0
    stopped_pids+=("$pid")
    pid_alive "$pid" || return 0
    kill -TERM "$pid" 2>/dev/null || true
    while [ "$tries" -gt 0 ] && pid_alive "$pid"; do sleep 0.1; tries=$((tries - 1)); done
    if pid_alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.1
    fi
}
stopped_pids=()

# A daemon's parent is init, which here reaps only every second or two: wait (3 s at most) until the processes that
# stop_pid ended are gone, so that no zombie shows up in `pgrep` right after a stop.
await_reaped() {
    local tries=60 pid left
    while [ "$tries" -gt 0 ]; do
        left=0
        for pid in "${stopped_pids[@]}"; do [ -e "/proc/$pid" ] && left=1; done
        [ "$left" = 0 ] && break
        sleep 0.05
        tries=$((tries - 1))
    done
    stopped_pids=()
}

# Installs the Debian packages among "$@" that are missing. `apt-get update` first: a fresh image's package lists
# are often stale or empty, and then install fails with "Unable to locate package".
ensure_packages() {
    local missing=() package
    for package in "$@"; do
        dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    need_root
    say "installing ${missing[*]} (apt-get)"
    local log="$KT_LAB_DIR/apt.log"
    mkdir -p "$KT_LAB_DIR"
    if ! { apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; } \
        > "$log" 2>&1 < /dev/null; then
        tail -n 20 "$log" >&2
        die "could not install ${missing[*]} (full log: $log)"
    fi
}

# Every package the lab may need; `lab.sh install` and the tests install them up front.
LAB_PACKAGES=(slurm-wlm munge iproute2 python3)
