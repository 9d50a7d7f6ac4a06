#!/usr/bin/env bash
# Headless Chromium for the browser test of the built book (tests/test_browser.py).
#
#   tests/browser.sh install   install Debian's chromium where /usr/bin/chromium is missing
#   tests/browser.sh version   print the installed version
#
# The test drives /usr/bin/chromium with Playwright (PyPI, a test extra) through
# executable_path: Playwright's own browser download is never used.
set -euo pipefail

CHROMIUM=/usr/bin/chromium

cmd_install() {
    # Does nothing (no apt-get at all) when the browser is present.
    if [[ -x "$CHROMIUM" ]]; then
        echo "Chromium: $CHROMIUM"
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "browser.sh: $CHROMIUM missing and not root: cannot install (apt-get install chromium)" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null 2>&1 || apt-get update -qq
    apt-get install -y -qq --no-install-recommends -o Dpkg::Options::=--force-confdef \
        -o Dpkg::Options::=--force-confold chromium fonts-dejavu-core >/dev/null
    [[ -x "$CHROMIUM" ]] || { echo "browser.sh: chromium did not install" >&2; exit 1; }
    echo "Chromium: $CHROMIUM"
}

case "${1:-}" in
    install) cmd_install ;;
    version) "$CHROMIUM" --version ;;
    *) echo "usage: $0 install | version" >&2; exit 2 ;;
esac
