#!/usr/bin/env bash
# Makes sure the PostgreSQL and Redis the tests use answer on 127.0.0.1 (5432, 6379),
# starting them when they are installed but stopped, and installs redis-server when it is
# missing (tests of several nodes start Redis servers of their own). Prints what it did;
# never fails by itself: the tests decide (under CI=true a missing PostgreSQL fails them).
set -u

if ! command -v redis-server >/dev/null && command -v apt-get >/dev/null; then
  echo "Installing redis-server..."
  { apt-get update -qq && apt-get install -y -qq --no-install-recommends redis-server; } \
    >/tmp/tidings-apt-redis.log 2>&1 || echo "installing redis-server failed (see /tmp/tidings-apt-redis.log)" >&2
fi
if command -v redis-cli >/dev/null && ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  if command -v redis-server >/dev/null; then
    echo "Starting Redis on 127.0.0.1:6379..."
    mkdir -p /var/lib/redis /var/log/redis 2>/dev/null
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" \
      --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
  fi
fi

if command -v pg_isready >/dev/null && pg_isready -q -h 127.0.0.1 -p 5432; then
  exit 0
fi
if command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
  for version in $(ls /etc/postgresql); do
    echo "Starting PostgreSQL $version (main)..."
    pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
  done
  for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && exit 0
    sleep 1
  done
fi
echo "PostgreSQL is not reachable on 127.0.0.1:5432; its tests will be skipped (or fail under CI=true)." >&2
exit 0
