#!/usr/bin/env bash
# Makes sure redis-server is installed for the Redis state-backend tests
# (tests/tests/redis_state.rs, tests/tests/redis_replicas.rs). Idempotent:
# installs Debian's redis-server package only when /usr/bin/redis-server is
# missing (CI runs as root with Debian's package registry reachable).
#
# Nothing is left running: each test starts its own redis-server on a free
# loopback port with no persistence (tests/src/redis.rs), kills and restarts
# it when the test needs Redis to go away, and kills it when the test ends.
# A system service the package may have started is stopped here.
set -euo pipefail
if [ ! -x /usr/bin/redis-server ]; then
  sudo_cmd=""
  if [ "$(id -u)" != "0" ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get install -y --no-install-recommends redis-server \
    || { $sudo_cmd apt-get update && $sudo_cmd apt-get install -y --no-install-recommends redis-server; }
  # The tests own their servers; do not leave the packaged one running.
  if command -v service >/dev/null 2>&1; then
    $sudo_cmd service redis-server stop >/dev/null 2>&1 || true
  fi
fi
/usr/bin/redis-server --version
