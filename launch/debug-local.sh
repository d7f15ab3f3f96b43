#!/usr/bin/env bash
# Runs N KnowTune ranks on this machine for debugging, one log file per rank:
#
#   launch/debug-local.sh [-n N] [--log-dir DIR] [--all-ranks] [--check-collectives] [--collective-timeout S] \
#       [--] train --stage sft … --output_dir out/debug
#
#   -n N                    ranks (default 2); more ranks than cores is allowed (unbound, 1 thread each)
#   --log-dir DIR           where rank-<r>.log go (default out/debug-local/<date-time>); the terminal shows them too
#   --all-ranks             INFO lines from every rank, prefixed "[rank N host]" (KNOWTUNE_LOG_ALL_RANKS=1)
#   --check-collectives     before each collective every rank compares step and operation; the first mismatch is
#                           reported (KNOWTUNE_CHECK_COLLECTIVES=1)
#   --collective-timeout S  a collective that takes longer than S seconds is reported and the job aborted
#                           (default 120 here; KNOWTUNE_COLLECTIVE_TIMEOUT)
# Other knowtune-mpirun options (--threads, --global-batch, --bind …) pass through; see launch/knowtune-mpirun.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ranks=2
log_dir=""
pass=()
export KNOWTUNE_COLLECTIVE_TIMEOUT="${KNOWTUNE_COLLECTIVE_TIMEOUT:-120}"
while [ $# -gt 0 ]; do
    case "$1" in
        -n|-np) ranks="${2:?$1 needs a number}"; shift 2 ;;
        --log-dir) log_dir="${2:?--log-dir needs a folder}"; shift 2 ;;
        --all-ranks) export KNOWTUNE_LOG_ALL_RANKS=1; shift ;;
        --check-collectives) export KNOWTUNE_CHECK_COLLECTIVES=1; shift ;;
        --collective-timeout) export KNOWTUNE_COLLECTIVE_TIMEOUT="${2:?--collective-timeout needs seconds}"; shift 2 ;;
        --threads|--global-batch|--bind|--mpirun-arg|-x) pass+=("$1" "${2:?$1 needs a value}"); shift 2 ;;
        --mca) pass+=("$1" "${2:?--mca needs a key}" "${3:?--mca needs a value}"); shift 3 ;;
        -h|--help) sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"; exit 0 ;;
        --) shift; break ;;
        -*) echo "debug-local: error: unknown option $1" >&2; exit 2 ;;
        *) break ;;
    esac
done
[[ "$ranks" =~ ^[1-9][0-9]*$ ]] || { echo "debug-local: error: -n $ranks is not a positive integer" >&2; exit 2; }
log_dir="${log_dir:-$repo_root/out/debug-local/$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$log_dir"

# This machine only, with as many slots as cores: up to nproc ranks are bound one core set each, more float.
hostfile="$log_dir/hostfile"
echo "localhost slots=$(nproc)" >"$hostfile"
echo "debug-local: $ranks rank(s); logs in $log_dir/rank-<r>.log" >&2
status=0
"$repo_root/launch/knowtune-mpirun" -H "$hostfile" -n "$ranks" --log-dir "$log_dir" ${pass[@]+"${pass[@]}"} -- "$@" \
    || status=$?
echo "debug-local: exit $status; logs: $(cd "$log_dir" && ls rank-*.log | tr '\n' ' ')(in $log_dir)" >&2
exit "$status"
