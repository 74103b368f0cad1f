#!/bin/sh
# Install the Debian/Ubuntu packages hpcnas and its test suite use. Idempotent and quiet:
# packages already installed are skipped; apt runs only when something is missing.
#
#   sh tests/install_system_packages.sh            # everything the test suite needs
#   sh tests/install_system_packages.sh --minimal  # only what a virtual environment needs
#
# Uses sudo when not run as root.
set -eu

MINIMAL="python3-venv python3-dev"
FULL="$MINIMAL build-essential postgresql mpich libmpich-dev slurm-wlm munge"  # + chromium below

case "${1:-}" in
    --minimal) WANTED="$MINIMAL" ;;
    "") WANTED="$FULL" ;;
    *) echo "usage: sh tests/install_system_packages.sh [--minimal]" >&2; exit 2 ;;
esac

if [ "$(id -u)" -eq 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
else
    echo "install_system_packages: run as root or install sudo" >&2
    exit 1
fi

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}

apt_updated=""
apt_update() {
    if [ -z "$apt_updated" ]; then
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
        apt_updated=1
    fi
}

MISSING=""
for pkg in $WANTED; do
    installed "$pkg" || MISSING="$MISSING $pkg"
done

# headless Chromium (HTML report tests): Debian calls it chromium, Ubuntu chromium-browser
if [ "${1:-}" != "--minimal" ] && ! installed chromium && ! installed chromium-browser; then
    apt_update
    if apt-cache show chromium >/dev/null 2>&1; then
        MISSING="$MISSING chromium"
    else
        MISSING="$MISSING chromium-browser"
    fi
fi

if [ -n "$MISSING" ]; then
    echo "install_system_packages: installing$MISSING" >&2
    apt_update
    # shellcheck disable=SC2086
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $MISSING >/dev/null
fi
echo "install_system_packages: present: $WANTED" >&2
