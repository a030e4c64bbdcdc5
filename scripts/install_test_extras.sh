#!/usr/bin/env bash
# Optional system packages for the tests: headless Chromium checks the HTML report.
# Best effort: without it, that one test is skipped with a reason.
set -u
command -v chromium >/dev/null 2>&1 && exit 0
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "note: could not install chromium; the browser test will be skipped"
fi
exit 0
