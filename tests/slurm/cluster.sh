#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, for `make test-slurm` (tests/test_slurm.py).
#   state=$(tests/slurm/cluster.sh start)   # prints its folder; clients need SLURM_CONF=$state/slurm.conf
#   tests/slurm/cluster.sh stop "$state"
# Debian's slurm-wlm and munge are installed with apt-get if missing (root only). No systemd: munged, slurmctld and
# slurmd are started directly, each with its key, socket, spool, state, logs and pid file in one temp folder, on
# ports of their own, so that nothing of the system's (/etc/munge, /etc/slurm, /run) is used or changed. `stop`
# cancels the cluster's jobs, ends the three daemons by their pids and removes the folder.
set -euo pipefail

say() { echo "cluster.sh: $*" >&2; }

install() {
    command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null && return
    if [ "$(id -u)" != 0 ]; then say "slurm-wlm and munge are not installed and installing them needs root"; exit 1; fi
    say "installing slurm-wlm and munge (apt-get)"
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >&2
}

start() {
    install
    local state host cpus mem port
    state=$(mktemp -d /tmp/reslab-slurm.XXXXXX)
    chmod 755 "$state"
    mkdir -p "$state/ctld" "$state/d"
    host=$(hostname -s)
    cpus=$(nproc)
    mem=$(awk '/MemTotal/ {print int($2 / 1024) - 1024}' /proc/meminfo)  # leave the system 1 GiB
    port=$((20000 + RANDOM % 20000))

    mungekey --create --keyfile="$state/munge.key"
    chown munge: "$state/munge.key" 2>/dev/null || true
    chmod 400 "$state/munge.key"
    munged --force --key-file="$state/munge.key" --socket="$state/munge.socket" --pid-file="$state/munged.pid" \
        --log-file="$state/munged.log" --seed-file="$state/munged.seed"

    cat > "$state/slurm.conf" <<EOF
ClusterName=reslab-test
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge.socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/slurmctld.log
SlurmdLogFile=$state/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
ReturnToService=2
MpiDefault=none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    export SLURM_CONF="$state/slurm.conf"
    slurmctld -f "$SLURM_CONF"
    slurmd -f "$SLURM_CONF"
    for _ in $(seq 60); do
        if [ "$(sinfo -h -o %T 2>/dev/null)" = idle ]; then echo "$state"; return; fi
        sleep 0.5
    done
    say "the node did not come up within 30 s; logs in $state"
    stop "$state"
    exit 1
}

stop() {
    local state=${1:?usage: cluster.sh stop <folder that start printed>}
    case "$state" in /tmp/reslab-slurm.*) ;; *) say "$state is not a folder that start made"; exit 1 ;; esac
    [ -f "$state/slurm.conf" ] || { say "$state is not a folder that start made"; exit 1; }
    if [ -f "$state/slurmctld.pid" ]; then
        SLURM_CONF="$state/slurm.conf" squeue -h -o %i 2>/dev/null | xargs -r env SLURM_CONF="$state/slurm.conf" scancel || true
    fi
    local name pid
    for name in slurmd slurmctld munged; do
        [ -f "$state/$name.pid" ] || continue
        pid=$(cat "$state/$name.pid")
        kill "$pid" 2>/dev/null || continue
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$state"
}

case "${1:-}" in
    start) start ;;
    stop) stop "${2:-}" ;;
    *) echo "usage: $0 start | stop <folder>" >&2; exit 2 ;;
esac
