#!/usr/bin/env bash
# Prepares a fresh Debian machine for KnowTune: the Debian packages (Open MPI, OpenBLAS, HDF5), the model
# (launch/fetch-model.sh), and an optimised build. Safe to re-run; does nothing that is already done.
set -euo pipefail
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packages=(libopenmpi-dev openmpi-bin libopenblas-dev libhdf5-dev hdf5-tools pkg-config)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "setup: installing ${missing[*]}" >&2
    sudo_cmd=()
    [ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# The OpenAI Python client: the API server's tests talk to it as users' scripts would.
if ! python3 -c "import openai" 2>/dev/null; then
    echo "setup: installing the openai Python client (pip)" >&2
    python3 -m pip install --quiet --disable-pip-version-check "openai>=1.0" >&2
fi

"$repo_root/launch/fetch-model.sh"

cd "$repo_root"
echo "setup: building (release)" >&2
swift build -c release --build-tests -Xswiftc -enable-testing 2>&1 | grep -Ev '^\[[0-9]+/[0-9]+\] (Compiling|Emitting|Linking|Write|Copying)' >&2
