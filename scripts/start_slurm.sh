#!/usr/bin/env bash
# A real single-node SLURM cluster on this Debian 12 machine, for CI and for trying lem's SLURM launcher locally.
#
#   scripts/start_slurm.sh start    install (first time), configure and start munge, MariaDB, slurmdbd, slurmctld, slurmd
#   scripts/start_slurm.sh status   which daemons run, and sinfo
#   scripts/start_slurm.sh stop     stop the daemons (configuration, database and job accounting are kept)
#
# Runs as root without systemd: every daemon is started directly. `start` is idempotent: what already runs is left
# alone, so it can run any number of times. Partition `cpu` (the default) holds this machine as its only node;
# accounting goes to slurmdbd, so `sacct` (which submitit polls) knows how every job ended, a killed one included.
set -euo pipefail

CLUSTER=lem
PARTITION=cpu
PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
#: memory per allocated CPU when a job asks for none; without it every job takes the whole node (MiB)
DEF_MEM_PER_CPU_MB=2048
SLURM_ETC=/etc/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/lib/slurm
DB_NAME=slurm_acct_db
DB_USER=slurm
NODE=$(hostname -s)
#: how long each daemon may take to answer (seconds)
WAIT_S=30

log() { echo "start_slurm: $*" >&2; }
die() { log "error: $*"; exit 1; }

# wait_for SECONDS DESCRIPTION LOGFILE COMMAND...: until COMMAND succeeds, or die naming LOGFILE.
wait_for() {
  local seconds=$1 what=$2 logfile=$3
  shift 3
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      [[ -f $logfile ]] && tail -n 20 "$logfile" >&2
      die "$what did not come up within ${seconds}s (log: $logfile)"
    fi
    sleep 0.2
  done
}

MARKER="# Written by lem's scripts/start_slurm.sh"

# ours FILE: FILE is absent or was written by this script (a site's own SLURM configuration is never overwritten).
ours() { [[ ! -e $1 ]] || head -n 1 "$1" | grep -q "^$MARKER"; }

# running PIDFILE: the process named in PIDFILE is alive.
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

install_packages() {
  local missing=()
  for package in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
  done
  ((${#missing[@]} == 0)) && return
  log "installing ${missing[*]}"
  # Keep the packages' maintainer scripts from starting daemons: this script starts them, configured.
  local policy=/usr/sbin/policy-rc.d added_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy"
    chmod +x "$policy"
    added_policy=1
  fi
  local status=0
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    "${PACKAGES[@]}" >/dev/null || status=$?
  if ((added_policy)); then rm -f "$policy"; fi
  ((status == 0)) || die "apt-get failed (exit $status)"
}

start_munge() {
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 /etc/munge
  [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
  running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  wait_for "$WAIT_S" munged /var/log/munge/munged.log bash -c 'munge -n | unmunge'
}

start_mariadb() {
  install -d -o mysql -g mysql -m 0755 /run/mysqld /var/log/mysql
  [[ -d /var/lib/mysql/mysql ]] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
  if ! mariadb-admin ping >/dev/null 2>&1; then
    setsid /usr/sbin/mariadbd --user=mysql --log-error=/var/log/mysql/error.log </dev/null >/dev/null 2>&1 &
  fi
  wait_for "$WAIT_S" MariaDB /var/log/mysql/error.log mariadb-admin ping
}

# The slurmdbd password: the one already in slurmdbd.conf, else a new random one (it never leaves this machine).
db_password() {
  local conf=$SLURM_ETC/slurmdbd.conf
  if [[ -f $conf ]] && grep -q '^StoragePass=' "$conf"; then
    sed -n 's/^StoragePass=//p' "$conf"
  else
    head -c 24 /dev/urandom | base64 | tr -dc 'A-Za-z0-9'
  fi
}

start_slurmdbd() {
  local password
  password=$(db_password)
  mariadb <<SQL
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost' IDENTIFIED BY '$password';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$password';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
SQL
  install -d -o slurm -g slurm -m 0755 "$LOG_DIR" "$STATE_DIR"
  install -o slurm -g slurm -m 0600 /dev/stdin "$SLURM_ETC/slurmdbd.conf" <<CONF
$MARKER.
AuthType=auth/munge
DbdHost=localhost
SlurmUser=slurm
PidFile=/run/slurmdbd.pid
LogFile=$LOG_DIR/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=$DB_USER
StoragePass=$password
StorageLoc=$DB_NAME
CONF
  running /run/slurmdbd.pid || slurmdbd
  wait_for "$WAIT_S" slurmdbd "$LOG_DIR/slurmdbd.log" sacctmgr -n list cluster
  if ! sacctmgr -n -P list cluster format=cluster | grep -qx "$CLUSTER"; then
    sacctmgr -i add cluster "$CLUSTER" >/dev/null
  fi
}

write_slurm_conf() {
  # This node as slurmd sees it (CPUs, sockets, cores, threads, RealMemory), so the node is never drained for
  # claiming more than it has.
  local node_line
  node_line=$(slurmd -C | head -n 1)
  [[ $node_line == NodeName=* ]] || die "slurmd -C printed no node line: $node_line"
  cat >"$SLURM_ETC/slurm.conf" <<CONF
$MARKER: one node, partition '$PARTITION', accounting through slurmdbd.
ClusterName=$CLUSTER
SlurmctldHost=$NODE
AuthType=auth/munge
SlurmUser=slurm
StateSaveLocation=$STATE_DIR/slurmctld
SlurmdSpoolDir=$STATE_DIR/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
# No systemd and no cgroups here: track processes through /proc, no task binding.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/linux
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$DEF_MEM_PER_CPU_MB
ReturnToService=2
MailProg=/bin/true
# submitit requeues preempted and timed-out jobs (scontrol requeue).
JobRequeue=1
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
SlurmctldTimeout=30
SlurmdTimeout=30
KillWait=10
$node_line State=UNKNOWN
PartitionName=$PARTITION Nodes=$NODE Default=YES MaxTime=INFINITE State=UP
CONF
}

node_idle() { sinfo -h -n "$NODE" -o '%t' | grep -Eq '^(idle|mix|alloc)'; }

start() {
  [[ $EUID -eq 0 ]] || die "run as root (it installs packages and starts daemons)"
  for conf in "$SLURM_ETC/slurm.conf" "$SLURM_ETC/slurmdbd.conf"; do
    ours "$conf" || die "$conf was not written by this script; not touching a configured SLURM"
  done
  local started=$SECONDS
  install_packages
  start_munge
  start_mariadb
  write_slurm_conf  # sacctmgr reads it too
  start_slurmdbd
  if running /run/slurmctld.pid; then
    scontrol reconfigure
  else
    slurmctld
  fi
  running /run/slurmd.pid || slurmd
  wait_for "$WAIT_S" "node $NODE" "$LOG_DIR/slurmd.log" node_idle
  log "cluster '$CLUSTER' up in $((SECONDS - started))s"
  sinfo
}

# stop_pid NAME PIDFILE: SIGTERM the process in PIDFILE and wait until it is gone.
stop_pid() {
  local name=$1 pidfile=$2 pid
  running "$pidfile" || return 0
  pid=$(cat "$pidfile")
  kill "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.1
  done
  die "$name (pid $pid) did not stop within 10s"
}

stop() {
  stop_pid slurmd /run/slurmd.pid
  stop_pid slurmctld /run/slurmctld.pid
  stop_pid slurmdbd /run/slurmdbd.pid
  if mariadb-admin ping >/dev/null 2>&1; then
    mariadb-admin shutdown
  fi
  stop_pid munged /run/munge/munged.pid
  log "stopped"
}

status() {
  local name pidfile
  for name in munged:/run/munge/munged.pid slurmdbd:/run/slurmdbd.pid slurmctld:/run/slurmctld.pid \
    slurmd:/run/slurmd.pid; do
    pidfile=${name#*:}
    if running "$pidfile"; then echo "${name%%:*}: running (pid $(cat "$pidfile"))"; else echo "${name%%:*}: stopped"; fi
  done
  if mariadb-admin ping >/dev/null 2>&1; then echo "mariadb: running"; else echo "mariadb: stopped"; fi
  sinfo
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
