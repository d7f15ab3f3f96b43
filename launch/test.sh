#!/usr/bin/env bash
# Runs KnowTune's whole test suite from a fresh machine: set-up (packages, model, optimised build), then every
# test, optimised (numeric code is 10-100x slower in debug builds). Multi-rank tests start mpirun themselves.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$repo_root/launch/setup.sh"
cd "$repo_root"
# mpirun refuses to run as root unless told; tests that launch ranks read these.
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
export OMPI_MCA_rmaps_base_oversubscribe=1
swift test -c release -Xswiftc -enable-testing --skip-build "$@"
