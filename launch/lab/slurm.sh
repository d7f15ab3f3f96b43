#!/usr/bin/env bash
# A real single-node Slurm on this machine: munged, slurmctld and slurmd started by hand (no systemd), one node named
# after `hostname -s`, one default partition, PMIx as the MPI plugin. See README.md beside this file.
#
#   slurm.sh start    install what is missing, start the daemons that are not running, wait until the node is idle
#   slurm.sh stop     cancel every job, stop the daemons this script started (and their job steps)
#   slurm.sh status   which daemons run, the node and the queue; exit 0 when up, 3 when stopped, 1 when half up
#
# Knobs: KT_SLURM_CPUS (CPUs of the node, default `nproc`; more than the cores is allowed), KT_SLURM_PARTITION
# (default "lab"), KT_SLURM_PURGE=1 (stop also deletes state and logs), KT_LAB_DIR (default ${TMPDIR:-/tmp}/kt-lab).
set -euo pipefail
LAB_NAME=slurm
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

SLURM_DIR="$KT_LAB_DIR/slurm"
RUN="$SLURM_DIR/run"      # pid files: one there means "this lab started that daemon" (stop kills only those)
LOGS="$SLURM_DIR/log"
# sbatch, srun and scontrol read /etc/slurm/slurm.conf when SLURM_CONF is unset: writing it there lets every client
# (the tests, a user's shell, the job scripts) reach the lab without extra environment.
CONF=/etc/slurm/slurm.conf
CONF_BACKUP="$CONF.before-kt-lab"
MARKER="# Written by KnowTune launch/lab/slurm.sh"
NODE="$(hostname -s)"
CPUS="${KT_SLURM_CPUS:-$(nproc)}"
PARTITION="${KT_SLURM_PARTITION:-lab}"
MUNGE_PIDFILE=/run/munge/munged.pid

munge_works() { munge -n 2>/dev/null | unmunge > /dev/null 2>&1; }
controller_up() { scontrol ping 2>/dev/null | grep -q 'is UP'; }
node_state() { sinfo -h -N -n "$NODE" -o '%T' 2>/dev/null | head -n 1; }

write_config() {   # $1: destination
    local overrides=""
    # slurmd refuses (drains the node) when told it has more CPUs than it finds, unless told to trust the config.
    [ "$CPUS" -gt "$(nproc)" ] && overrides="SlurmdParameters=config_overrides"
    cat > "$1" <<EOF
$MARKER; it restores any previous file on stop.
ClusterName=ktlab
# Addresses pinned to loopback: the lab must not depend on how (or whether) the machine's hostname resolves.
SlurmctldHost=$NODE(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation=$SLURM_DIR/state
SlurmdSpoolDir=$SLURM_DIR/spool
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd.log
# Debian's Open MPI speaks PMIx only: srun --mpi=pmi2 / none cannot start its ranks, so make pmix the default.
MpiDefault=pmix
# No cgroup hierarchy without systemd: track job processes through /proc, and bind nothing.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
# No slurmdbd: job state comes from slurmctld alone, so keep finished jobs visible to scontrol for 5 minutes.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
# A request larger than the node fails at submission instead of pending forever.
EnforcePartLimits=ALL
# Schedule at once on submission (tests wait on jobs; the defaults add seconds).
SchedulerParameters=batch_sched_delay=0,sched_min_interval=0
# Time between SIGTERM and SIGKILL at cancel/time limit: room for a rank to write its checkpoint.
KillWait=10
# The node comes back by itself after a restart of the daemons.
ReturnToService=2
MailProg=/bin/true
$overrides
NodeName=$NODE NodeAddr=127.0.0.1 NodeHostname=$NODE CPUs=$CPUS State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
EOF
}

# Runs a daemon's launcher with no descriptor but 0-2 inherited: a daemon keeping a caller's pipe open makes that
# caller (a test harness reading our output) wait for EOF forever.
launch_daemon() {   # $1: file for what it prints before its log opens; the command follows
    local console="$1"; shift
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd="${fd##*/}"
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
        done
        exec "$@"
    ) < /dev/null >> "$console" 2>&1
}

# Log files outlive restarts: remember where each stood before this start, to show only what this start wrote.
declare -A log_start=()
mark_log() { log_start[$1]="$(stat -c %s "$1" 2>/dev/null || echo 0)"; }

# What start reports when a daemon will not come up: which, what it logged during this start, what usually fixes it.
fail_daemon() {   # daemon, hint, log files...
    local daemon="$1" hint="$2" log news
    shift 2
    warn "error: $daemon did not start"
    for log in "$@"; do
        news="$(tail -c +$((${log_start[$log]:-0} + 1)) "$log" 2>/dev/null | tail -n 15)"
        [ -n "$news" ] || continue
        warn "--- $log (last lines):"
        echo "$news" >&2
    done
    warn "hint: $hint"
    exit 1
}

# Daemons started by this invocation: stopped again if start fails half-way.
started=()
wrote_config=0
cleanup_failed_start() {
    local status=$?
    [ "$status" -eq 0 ] && return
    if [ ${#started[@]} -gt 0 ] || [ "$wrote_config" = 1 ]; then
        [ ${#started[@]} -gt 0 ] && warn "cleaning up after the failed start: stopping ${started[*]}"
        local name
        for name in slurmd slurmctld munged; do
            [[ " ${started[*]} " == *" $name "* ]] || continue
            stop_pid "$(pid_from "$RUN/$name.pid" "$name" || true)"
            rm -f "$RUN/$name.pid"
        done
        await_reaped
        restore_config
    fi
    exit "$status"
}

restore_config() {
    if [ -f "$CONF_BACKUP" ]; then
        mv -f "$CONF_BACKUP" "$CONF"
    elif [ -f "$CONF" ] && head -n 1 "$CONF" | grep -qF "$MARKER"; then
        rm -f "$CONF"
    fi
}

start_munge() {
    munge_works && return 0
    if [ ! -s /etc/munge/munge.key ]; then   # the Debian package makes one; a stripped image may not have it
        mkdir -p /etc/munge
        mungekey --create --keyfile=/etc/munge/munge.key > /dev/null 2>&1 \
            || head -c 1024 /dev/urandom > /etc/munge/munge.key
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    # /run is a fresh tmpfs on many images: munged's socket folder may be gone.
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f "$MUNGE_PIDFILE"
    mark_log /var/log/munge/munged.log
    mark_log "$LOGS/munged.console"
    if launch_daemon "$LOGS/munged.console" runuser -u munge -- /usr/sbin/munged; then
        local i
        for i in $(seq 50); do munge_works && break; sleep 0.1; done
    fi
    # Our copy of its pid marks it as ours (munged writes its own file under /run/munge).
    if pid_from "$MUNGE_PIDFILE" munged > "$RUN/munged.pid"; then
        started+=(munged)
    else
        rm -f "$RUN/munged.pid"
    fi
    munge_works || fail_daemon munged \
        "/etc/munge/munge.key must belong to munge:munge with mode 0400; /etc/munge, /var/lib/munge and /var/log/munge must not be writable by others" \
        "$LOGS/munged.console" /var/log/munge/munged.log
    [ -s "$RUN/munged.pid" ] || warn "munged runs but left no pid file: stop cannot end it"
}

port_free() {   # port, daemon: a listener there now is not ours (our daemon is not running), and would make it fail
    local holder
    holder="$(ss -Hltnp "sport = :$1" 2>/dev/null | head -n 1)"
    [ -z "$holder" ] || die "port $1, which $2 needs, is already taken: $holder"
}

# Before starting daemon $1 on port $2: refuses one this lab did not start and a taken port, marks where its logs
# start, and records it as started (so a failed start stops it).
claim_daemon() {
    local other
    if other="$(live_named "$1")"; then
        die "a $1 this lab did not start is running (pid ${other//$'\n'/ }); stop it first"
    fi
    port_free "$2" "$1"
    mark_log "$LOGS/$1.log"
    mark_log "$LOGS/$1.console"
    started+=("$1")
}

start_slurmctld() {
    pid_from "$RUN/slurmctld.pid" slurmctld > /dev/null && return 0
    claim_daemon slurmctld 6817
    # -c: a cold start is a fresh cluster; state saved by an earlier lab would bring back jobs whose steps are gone.
    launch_daemon "$LOGS/slurmctld.console" slurmctld -c \
        || fail_daemon slurmctld "check the configuration in $CONF" "$LOGS/slurmctld.console" "$LOGS/slurmctld.log"
    local i
    for i in $(seq 100); do
        # Give it a moment to write its pid file, then stop waiting for a daemon that already died.
        [ "$i" -gt 10 ] && ! pid_from "$RUN/slurmctld.pid" slurmctld > /dev/null && break
        controller_up && return 0
        sleep 0.1
    done
    fail_daemon slurmctld "port 6817 may be taken (ss -ltnp | grep 6817), or $SLURM_DIR/state is not writable" \
        "$LOGS/slurmctld.console" "$LOGS/slurmctld.log"
}

start_slurmd() {
    pid_from "$RUN/slurmd.pid" slurmd > /dev/null && return 0
    claim_daemon slurmd 6818
    launch_daemon "$LOGS/slurmd.console" slurmd \
        || fail_daemon slurmd "check the configuration in $CONF" "$LOGS/slurmd.console" "$LOGS/slurmd.log"
}

wait_for_node() {
    local i state=""
    for i in $(seq 150); do
        state="$(node_state)"
        case "$state" in
            idle* | mixed* | allocated* | completing*) return 0 ;;
            down* | drain*) scontrol update NodeName="$NODE" State=RESUME > /dev/null 2>&1 || true ;;
        esac
        [ "$i" -gt 10 ] && ! pid_from "$RUN/slurmd.pid" slurmd > /dev/null && break
        sleep 0.1
    done
    fail_daemon slurmd \
        "node $NODE is '${state:-unknown}'; port 6818 must be free (ss -ltnp | grep 6818); KT_SLURM_CPUS (now $CPUS) must be > 0" \
        "$LOGS/slurmd.console" "$LOGS/slurmd.log"
}

start() {
    need_root
    [[ "$CPUS" =~ ^[1-9][0-9]*$ ]] || die "KT_SLURM_CPUS=$CPUS: give a positive number"
    mkdir -p "$RUN" "$LOGS" "$SLURM_DIR/state" "$SLURM_DIR/spool" "$(dirname "$CONF")"
    # Decided before installing: a munged that a package script starts during install is then ours to stop.
    local munge_was_up=0
    command -v munge > /dev/null && munge_works && munge_was_up=1
    ensure_packages slurm-wlm munge
    trap cleanup_failed_start EXIT
    if [ "$munge_was_up" = 0 ] && munge_works && [ ! -s "$RUN/munged.pid" ]; then
        pid_from "$MUNGE_PIDFILE" munged > "$RUN/munged.pid" || true
    fi

    # The configuration: an unchanged one with running daemons means there is nothing to do.
    local fresh="$SLURM_DIR/slurm.conf.new"
    write_config "$fresh"
    if cmp -s "$fresh" "$CONF"; then
        rm -f "$fresh"
    else
        if pid_from "$RUN/slurmctld.pid" slurmctld > /dev/null || pid_from "$RUN/slurmd.pid" slurmd > /dev/null; then
            say "configuration changed: restarting the daemons"
            stop_daemons || true
            await_reaped
        fi
        if [ -f "$CONF" ] && ! head -n 1 "$CONF" | grep -qF "$MARKER" && [ ! -f "$CONF_BACKUP" ]; then
            say "keeping the existing $CONF as $CONF_BACKUP (put back on stop)"
            cp -p "$CONF" "$CONF_BACKUP"
        fi
        mv -f "$fresh" "$CONF"
        wrote_config=1
    fi

    start_munge
    start_slurmctld
    start_slurmd
    wait_for_node
    trap - EXIT
    if [ ${#started[@]} -eq 0 ]; then
        say "already up: node $NODE ($(node_state)), partition $PARTITION"
    else
        say "up: node $NODE with $CPUS CPUs ($(node_state)), partition $PARTITION; started ${started[*]}; logs in $LOGS"
    fi
}

# Stops slurmctld and slurmd if this lab started them, and any job step they left behind.
stop_daemons() {
    local ctld slurmd
    ctld="$(pid_from "$RUN/slurmctld.pid" slurmctld || true)"
    slurmd="$(pid_from "$RUN/slurmd.pid" slurmd || true)"
    if [ -n "$ctld" ] && controller_up; then
        # Cancel first so that ranks get SIGTERM then SIGKILL after KillWait, as on a real cluster.
        local jobs i
        jobs="$(squeue -h -o %A 2>/dev/null | xargs)"
        if [ -n "$jobs" ]; then
            say "cancelling jobs $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2> /dev/null || true
            for i in $(seq 150); do [ -z "$(squeue -h -o %A 2>/dev/null)" ] && break; sleep 0.1; done
        fi
        scontrol shutdown > /dev/null 2>&1 || true   # slurmctld saves its state and tells slurmd to exit
    fi
    stop_pid "$slurmd" 100
    stop_pid "$ctld" 100
    if [ -n "$slurmd" ]; then
        # Job steps (slurmstepd) belong to our slurmd; none may outlive the lab.
        local step
        for step in $(live_named slurmstepd || true); do stop_pid "$step" 30; done
    fi
    rm -f "$RUN/slurmctld.pid" "$RUN/slurmd.pid"
    [ -n "$ctld$slurmd" ]
}

stop() {
    need_root
    local stopped=()
    pid_from "$RUN/slurmctld.pid" slurmctld > /dev/null && stopped+=(slurmctld)
    pid_from "$RUN/slurmd.pid" slurmd > /dev/null && stopped+=(slurmd)
    stop_daemons || true
    local munged
    if munged="$(pid_from "$RUN/munged.pid" munged)"; then
        stop_pid "$munged"
        stopped+=(munged)
    fi
    rm -f "$RUN/munged.pid"
    await_reaped
    restore_config
    [ "${KT_SLURM_PURGE:-0}" = 1 ] && rm -rf "$SLURM_DIR"
    if [ ${#stopped[@]} -eq 0 ]; then
        say "not running"
    else
        say "stopped ${stopped[*]}"
    fi
}

status() {
    local running=0 name pid
    for name in munged slurmctld slurmd; do
        if pid="$(pid_from "$RUN/$name.pid" "$name")"; then
            echo "$name: running (pid $pid)"
            [ "$name" = munged ] || running=$((running + 1))
        elif [ "$name" = munged ] && command -v munge > /dev/null && munge_works; then
            echo "munged: running (not started by the lab, left alone by stop)"
        else
            echo "$name: not running"
        fi
    done
    [ "$running" -eq 0 ] && return 3
    controller_up && [ "$running" -eq 2 ] || return 1
    echo "node $NODE: $(node_state); partition $PARTITION; config $CONF; logs $LOGS"
    squeue 2> /dev/null || true
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
