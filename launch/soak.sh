#!/usr/bin/env bash
# The fault-injection soak by hand (Tests/KnowTuneCLITests/SoakTests.swift; the suite runs a short form): TRIALS
# random SIGKILLs of a rank under `mpirun -np 2` on the tiny model (a third of them inside a checkpoint write), each
# resubmitted until it ends with the uninterrupted run's adapter bit for bit; a filling tmpfs under the output
# folder; a SIGSTOPped rank against --collective_timeout. Writes out/soak/soak.json (trials, survived, steps lost per
# kill, seconds to exit) and prints it. Needs root for the tmpfs mount, as the suite does.
#   launch/soak.sh [TRIALS (50)]
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
"$repo_root/launch/fetch-model.sh"
swift build -c release --build-tests -Xswiftc -enable-testing >&2
rm -f out/soak/soak.json
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
KNOWTUNE_SOAK_TRIALS="${1:-50}" swift test -c release -Xswiftc -enable-testing --skip-build --filter SoakTests >&2
cat out/soak/soak.json
