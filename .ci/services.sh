#!/usr/bin/env bash
# Services the test suite needs: the mosquitto MQTT broker for tests/deploy (started and
# stopped by the tests themselves on a free 127.0.0.1 port). Idempotent and quiet.
set -euo pipefail

if command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "services.sh: no apt-get; install mosquitto yourself (tests/deploy will be skipped)" >&2
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends mosquitto >/dev/null; }; then
  echo "services.sh: could not install mosquitto; tests/deploy will be skipped" >&2
fi
