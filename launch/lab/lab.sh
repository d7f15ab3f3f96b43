#!/usr/bin/env bash
# The launch lab as a whole: `install` the Debian packages every part needs, `status` of Slurm and of the namespace
# hosts, `stop` both. Each part has its own script for start/stop (slurm.sh, hosts.sh); see README.md beside this.
set -euo pipefail
LAB_NAME=lab
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

case "${1:-status}" in
    install)
        ensure_packages "${LAB_PACKAGES[@]}"
        ;;
    status)
        # Both parts are reported even when the first is down; the exit status is the worse of the two.
        worst=0
        "$LAB_HOME/slurm.sh" status || worst=$?
        "$LAB_HOME/hosts.sh" status || { status=$?; [ "$status" -gt "$worst" ] && worst=$status; }
        exit "$worst"
        ;;
    stop)
        failed=0
        "$LAB_HOME/hosts.sh" stop || failed=1
        "$LAB_HOME/slurm.sh" stop || failed=1
        exit "$failed"
        ;;
    *)
        echo "usage: $0 install|status|stop" >&2
        exit 2
        ;;
esac
