#!/usr/bin/env bash
# A LAVA lab on this host, started the way one is started without systemd (as in a container or on this
# project's machines): PostgreSQL, the server (gunicorn), the publisher, the scheduler and a worker with two
# QEMU devices under TCG. For khil's own tests, and for trying `--engine lava` without a lab of one's own.
#
#   harness/lava-lab.sh up     install what is missing (once), start everything, print the URL and token
#   harness/lava-lab.sh down   stop every process `up` started, by pid
#
# LAVA is not in the default bootstrap (harness/host-packages.txt): its ~560 MB are paid only here.
# State (pids, logs, the admin token) lives in $KHIL_LAVA_STATE, /run/khil-lava by default.
set -euo pipefail

STATE=${KHIL_LAVA_STATE:-/run/khil-lava}
OWNED=/var/lib/lava-server/.khil-lab
PORT=${KHIL_LAVA_PORT:-8000}
URL="http://127.0.0.1:$PORT"
WORKER=khil-worker
DEVICES=(khil-qemu-1 khil-qemu-2)
PG_VERSION=15
# lava-server: the server, scheduler and publisher; lava-dispatcher: the worker that runs QEMU;
# postgresql: lava-server's database; curl: waiting for the API.
PACKAGES=(postgresql lava-server lava-dispatcher curl)

log() { echo "lava-lab: $*" >&2; }

missing_packages() {
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}

start_postgres() {
  if ! pg_isready -q -h localhost 2>/dev/null; then
    pg_ctlcluster "$PG_VERSION" main start
    touch "$STATE/postgres.ours"
  fi
  until pg_isready -q -h localhost; do sleep 0.2; done
}

install() {
  local need
  # One line of names: the ownership mark below matches " lava-server " in it.
  need=$(missing_packages | xargs)
  [ -z "$need" ] && return
  [ "$(id -u)" = 0 ] || { log "installing $need needs root: run as root, or apt-get install $need"; exit 2; }
  log "installing $need (once, about 3.5 min)"
  export DEBIAN_FRONTEND=noninteractive
  # lava-server's postinst creates its database role and migrates: PostgreSQL must be running first.
  apt-get install -y -q --no-install-recommends postgresql >"$STATE/install.log" 2>&1
  start_postgres
  apt-get install -y -q --no-install-recommends $need >>"$STATE/install.log" 2>&1 ||
    { log "apt-get failed: see $STATE/install.log"; exit 1; }
  # This lava-server is khil's: `up` may empty its database each time (see owned_or_refuse).
  case " $need " in *" lava-server "*) echo "installed by khil's harness/lava-lab.sh" >"$OWNED" ;; esac
}

# A lava-server khil did not install may be someone's real lab: `up` empties the database and the job
# output, so it refuses, unless told to take the machine's lab over.
owned_or_refuse() {
  [ -f "$OWNED" ] || [ -f /etc/lava-server/settings.d/50-khil.yaml ] && return
  [ "${KHIL_LAVA_TAKE_OVER:-}" = 1 ] && { echo "taken over by khil's harness/lava-lab.sh" >"$OWNED"; return; }
  su postgres -c "psql -lqt" 2>/dev/null | cut -d'|' -f1 | grep -qw lavaserver || return
  log "lava-server here was not installed by khil ($OWNED is missing): its database and job output may be a real lab's, and 'up' would empty them. Use a machine of its own, or set KHIL_LAVA_TAKE_OVER=1 to let khil take this one over"
  exit 2
}

# Starts a daemon in its own session, its output in $STATE/NAME.log and its pid in $STATE/NAME.pid.
daemon() {
  local name=$1
  shift
  setsid "$@" >"$STATE/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/$name.pid"
}

manage() { lava-server manage "$@"; }

fresh_database() {
  # Every `up` starts from an empty lab: no jobs, devices or tokens of an earlier one.
  su postgres -c "dropdb --if-exists lavaserver && createdb -O lavaserver lavaserver" >/dev/null
  # Job logs live on disk by date and job id, not in the database: a new job 2 would be served the log of an
  # earlier lab's job 2 (seen here).
  rm -rf /var/lib/lava-server/default/media/job-output/*
  manage migrate --noinput >"$STATE/migrate.log" 2>&1 || { log "migrate failed: see $STATE/migrate.log"; exit 1; }
}

device_dictionaries() {
  local dir=/etc/lava-server/dispatcher-config/devices
  mkdir -p "$dir"
  for d in "${DEVICES[@]}"; do
    # no_kvm: nested KVM is not to be trusted here; khil's job context names the CPU and machine.
    cat >"$dir/$d.jinja2" <<EOF
{% extends 'qemu.jinja2' %}
{% set no_kvm = True %}
{% set memory = 2048 %}
{% set mac_addr = '52:54:00:12:34:$(printf %02x $((0x60 + ${d##*-})))' %}
EOF
  done
}

up() {
  mkdir -p "$STATE"
  if [ -f "$STATE/gunicorn.pid" ] && kill -0 "$(cat "$STATE/gunicorn.pid")" 2>/dev/null; then
    log "already up at $URL (token in $STATE/token)"
    exit 0
  fi
  install
  start_postgres
  owned_or_refuse
  mkdir -p /etc/lava-server/settings.d
  # The publisher tells the scheduler at once when a job is submitted: jobs start in ~4 s, not the 20 s poll.
  echo 'EVENT_NOTIFICATION: true' >/etc/lava-server/settings.d/50-khil.yaml
  fresh_database
  daemon gunicorn gunicorn3 lava_server.wsgi -u lavaserver -g lavaserver --worker-class eventlet --workers 2 --bind "127.0.0.1:$PORT"
  daemon publisher lava-server manage lava-publisher
  daemon scheduler lava-server manage lava-scheduler
  until curl -sf -o /dev/null "$URL/api/v0.2/system/version/"; do sleep 0.3; done
  # No well-known password, and a token only root can read.
  manage users add --superuser --staff --passwd "$(head -c 24 /dev/urandom | base64 | tr -d /+=)" admin >/dev/null
  (umask 077 && manage tokens add --user admin --description khil >"$STATE/token")
  manage device-types add qemu >/dev/null
  device_dictionaries
  # Workers from 127.0.0.0/8 register themselves: the worker first, then the devices on it. A token the
  # worker kept from an earlier lab would name a worker this fresh database does not have.
  rm -f /var/lib/lava/dispatcher/worker/token
  daemon worker lava-worker --url "$URL/" --name "$WORKER" --ping-interval 5
  local token api
  token=$(cat "$STATE/token")
  api() { curl -sf -H "Authorization: Token $token" "$URL/api/v0.2/$1"; }
  for _ in $(seq 1 100); do api "workers/$WORKER/" >/dev/null && break; sleep 0.3; done
  for d in "${DEVICES[@]}"; do manage devices add --device-type qemu --worker "$WORKER" "$d" >/dev/null; done
  for _ in $(seq 1 100); do api "workers/$WORKER/" | grep -q '"state":"Online"' && break; sleep 0.3; done
  api "workers/$WORKER/" | grep -q '"state":"Online"' ||
    { log "the worker did not come online: see /var/log/lava-dispatcher/lava-worker.log"; exit 1; }
  log "up at $URL, ${#DEVICES[@]} qemu devices; token in $STATE/token"
  echo "$URL"
}

# Whether a process of the session `up` started is still running (a zombie waiting for its reaper is not).
session_alive() { ps -e -o sid=,stat= | awk -v s="$1" '$1 == s && $2 !~ /^Z/ { found = 1 } END { exit !found }'; }

down() {
  [ -d "$STATE" ] || { log "not up"; return 0; }
  for name in worker scheduler publisher gunicorn; do
    local f="$STATE/$name.pid"
    [ -f "$f" ] || continue
    # Each daemon leads its own session (setsid): its children (lava-run, QEMU, gunicorn's workers) go too.
    kill -TERM -- "-$(cat "$f")" 2>/dev/null || true
  done
  for name in worker scheduler publisher gunicorn; do
    local f="$STATE/$name.pid"
    [ -f "$f" ] || continue
    local sid
    sid=$(cat "$f")
    for _ in $(seq 1 50); do session_alive "$sid" || break; sleep 0.1; done
    kill -KILL -- "-$sid" 2>/dev/null || true
    for _ in $(seq 1 50); do session_alive "$sid" || break; sleep 0.1; done
    rm -f "$f"
  done
  if [ -f "$STATE/postgres.ours" ]; then
    pg_ctlcluster "$PG_VERSION" main stop
    rm -f "$STATE/postgres.ours"
  fi
  rm -f /etc/lava-server/settings.d/50-khil.yaml
  log "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) echo "usage: $0 up|down" >&2; exit 2 ;;
esac
