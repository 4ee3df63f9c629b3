#!/usr/bin/env bash
# One set-up command: Debian's Chromium (for the browser demo's end-to-end test), then denseclip
# with every runtime, demo and test dependency. Idempotent: run it again at any time.
#
#   bash install.sh
#
# Chromium comes from apt because Playwright's own browser download ('playwright install')
# cannot reach its servers on offline machines; the tests drive /usr/bin/chromium instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"

if [ ! -x /usr/bin/chromium ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=()
    elif command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo)
    else
        echo "install.sh: /usr/bin/chromium is missing and neither root nor sudo is available;" \
             "install Debian's 'chromium' package, then run this script again" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" apt-get install -y --no-install-recommends chromium fonts-dejavu-core
fi

python -m pip install -e ".[all]"
