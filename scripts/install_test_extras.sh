#!/usr/bin/env bash
# Optional system package for the tests: headless Chromium renders the HTML report in one test.
# Best effort, and said out loud: without it, that one test is skipped with a reason.
set -u
if command -v chromium >/dev/null 2>&1; then
  echo "test set-up: chromium found (the HTML report's browser test uses it)"
  exit 0
fi
if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
  echo "test set-up: installing chromium with apt-get (about 100 MB) for the HTML report's browser test"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) >/dev/null 2>&1 \
    || echo "test set-up: could not install chromium; the browser test will be skipped"
else
  echo "test set-up: chromium is not installed (needs root and apt-get); the browser test will be skipped"
fi
exit 0
