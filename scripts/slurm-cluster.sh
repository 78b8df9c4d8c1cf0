#!/usr/bin/env bash
# A real Slurm cluster on this machine, for rlt's cluster tests.
#
#   bash scripts/slurm-cluster.sh up       # install (Debian, root), configure, start, wait for the nodes
#   bash scripts/slurm-cluster.sh status   # exit 0 when every node accepts jobs
#   bash scripts/slurm-cluster.sh down     # cancel every job, stop the daemons this script started
#
# slurmctld and slurmd run on this host (no systemd: the binaries are started
# directly), authenticated by munge. There is no accounting database: the tests
# need sbatch, srun, arrays, dependencies, requeue and signals, not sacct.
#
# Two partitions:
#   debug (default)  this host itself, one node.
#   two              two more nodes, rlt-n1 and rlt-n2, for jobs that span
#                    machines. Each is a slurmd in its own network namespace
#                    and host name, with its own address on a private bridge
#                    ($NET.11 and $NET.12; this host is $NET.1): a process on
#                    one node reaches the other only over that network, as
#                    between two machines. The nodes share this host's file
#                    system, as cluster nodes share one. Inside a node,
#                    /etc/hosts (/etc/netns/NODE/hosts, bound over it in the
#                    node's own mount namespace; `ip netns exec NODE` sees it
#                    too) names both nodes and the controller; this host's own
#                    /etc/hosts is not touched.
# Settings can be overridden from the environment:
#   RLT_SLURM_CPUS       CPUs each node advertises (default: nproc). More than the
#                        real cores lets more tiny test jobs run side by side.
#   RLT_SLURM_STATE      where the PIDs of the started daemons are kept.
#   RLT_SLURM_TWO_NODES  0: no partition `two` (no network namespaces needed).
#   RLT_SLURM_NET        the first three octets of the nodes' private /24
#                        (default 10.213.77); no route leaves it.
set -euo pipefail

STATE_DIR=${RLT_SLURM_STATE:-/var/lib/rlt-slurm}
PID_FILE=$STATE_DIR/daemons.pid      # "name pid" lines: what `down` may stop
CONF=/etc/slurm/slurm.conf
MUNGE_KEY=/etc/munge/munge.key
UP_TIMEOUT=60                        # seconds to wait for the nodes to be idle
TWO_NODES=${RLT_SLURM_TWO_NODES:-1}
NET=${RLT_SLURM_NET:-10.213.77}
BRIDGE=rlt-br0                       # this host's side of the pair's network
PAIR=(rlt-n1 rlt-n2)                 # the nodes of partition `two`

die() { echo "slurm-cluster.sh: $*" >&2; exit 1; }
log() { echo "slurm-cluster.sh: $*"; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages and starts the Slurm daemons)"
}

# --- installation ------------------------------------------------------------

install_packages() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null \
        && command -v slurmd >/dev/null && command -v munged >/dev/null; then
        return
    fi
    command -v apt-get >/dev/null \
        || die "Slurm is not installed and there is no apt-get: install slurm-wlm and munge by hand"
    log "installing slurm-wlm and munge with apt"
    # Package scripts would try to start the services through invoke-rc.d;
    # policy-rc.d exit code 101 forbids that, so the only daemons running are
    # the ones this script starts (and records) below. Only a file we created
    # is removed again.
    local policy=/usr/sbin/policy-rc.d made_policy=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        made_policy=1
    fi
    # apt's and debconf's chatter goes to a log, shown only when it fails.
    local rc=0 aptlog=/var/log/slurm-cluster-apt.log
    {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq \
            && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                slurm-wlm munge
    } >"$aptlog" 2>&1 || rc=$?
    [ "$made_policy" -eq 0 ] || rm -f "$policy"
    if [ "$rc" -ne 0 ]; then
        tail -n 20 "$aptlog" >&2
        die "apt-get install slurm-wlm munge failed (exit $rc; full output in $aptlog)"
    fi
}

# --- configuration -----------------------------------------------------------

munge_key() {
    # One key, made once: regenerating it under a running munged would break
    # every credential in flight.
    if [ ! -s "$MUNGE_KEY" ]; then
        log "creating $MUNGE_KEY"
        mkdir -p "$(dirname "$MUNGE_KEY")"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile="$MUNGE_KEY" --force
        else
            dd if=/dev/urandom of="$MUNGE_KEY" bs=1024 count=1 status=none
        fi
    fi
    # munged refuses a key that others can read or that it does not own.
    chown munge:munge "$MUNGE_KEY"
    chmod 0400 "$MUNGE_KEY"
}

dirs() {
    # munged runs as the munge user and wants its socket dir to be its own;
    # without systemd nobody creates /run/munge for it.
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/lib/munge /var/log/munge
    # The Slurm daemons run as root here (SlurmUser=root), so root owns their state.
    install -d -m 0755 /var/spool/slurmctld /var/spool/slurmd /var/log/slurm /etc/slurm "$STATE_DIR"
    local node
    for node in $(nodes); do
        install -d -m 0755 "/var/spool/slurmd/$node"
    done
}

# Every node's name: this host, then the pair when it is enabled.
nodes() {
    hostname -s
    [ "$TWO_NODES" = 0 ] || printf '%s\n' "${PAIR[@]}"
}

# A node of the pair's address on the private network: rlt-n1 -> $NET.11.
pair_addr() {
    echo "$NET.1${1##*-n}"
}

write_conf() {
    # Prints the config this host should have; `up` compares it with the file.
    local host cpus mem_total real_mem def_mem
    host=$(hostname -s)
    cpus=${RLT_SLURM_CPUS:-$(nproc)}
    mem_total=$(free -m | awk '/^Mem:/ {print $2}')
    # A bit under the total: slurmd drains a node that reports less memory
    # than RealMemory, and the OS needs some for itself.
    real_mem=$(( mem_total * 90 / 100 ))
    # With memory a consumable resource, a job that asks for no --mem would get
    # the whole node and run alone; a per-CPU default lets jobs share it.
    def_mem=$(( real_mem / cpus ))
    cat <<EOF
# Written by scripts/slurm-cluster.sh: a one-node cluster for rlt's tests.
ClusterName=rlt
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none

# No cgroup plugins: without systemd nothing delegates a cgroup tree to
# slurmd. Jobs' processes are tracked by parent PID, and tasks are not bound.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none

SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=$def_mem

# No slurmdbd: nothing is accounted, so sacct has nothing to say; squeue and
# scontrol show the live jobs.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none

# Batch jobs are requeueable unless they say --no-requeue (scontrol requeue,
# preemption, node failure).
JobRequeue=1
# A node that went down comes back as soon as slurmd registers again.
ReturnToService=2
# Explicit, so the tests (and the executor's array splitting) know the limit:
# array indices run 0..MaxArraySize-1.
MaxArraySize=1001
MaxJobCount=10000
# Seconds between SIGTERM and SIGKILL at scancel, requeue and the time limit
# (Slurm's default): the time a stage has to stop gracefully.
KillWait=30
# Finished jobs stay visible in squeue/scontrol for this long (no sacct here).
MinJobAge=600
InactiveLimit=0
# srun/sbatch --signal=SIG@T warnings: slurmctld delivers them itself; nothing
# to enable, but they are checked on its periodic timer, so they come up to a
# minute early (see sbatch(1)).

# The node as configured is what counts, even when slurmd detects other
# hardware (RLT_SLURM_CPUS above nproc).
SlurmdParameters=config_overrides

StateSaveLocation=/var/spool/slurmctld
# %n: the node's name (one slurmd per node, all on this host).
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info

NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    [ "$TWO_NODES" = 0 ] && return
    local node
    echo
    echo "# Two nodes in network namespaces of this host (see scripts/slurm-cluster.sh)."
    for node in "${PAIR[@]}"; do
        echo "NodeName=$node NodeAddr=$(pair_addr "$node") CPUs=$cpus RealMemory=$real_mem State=UNKNOWN"
    done
    echo "PartitionName=two Nodes=$(IFS=,; echo "${PAIR[*]}") Default=NO MaxTime=INFINITE State=UP"
}

# --- the pair's network ------------------------------------------------------

# A bridge on this host ($NET.1) and, per node, a network namespace named after
# it holding one end of a veth pair ($NET.1x) whose other end is on the bridge.
# No route leaves $NET.0/24. Each piece is made only when missing (idempotent up).
net_up() {
    command -v ip >/dev/null || die "partition two needs iproute2's ip (RLT_SLURM_TWO_NODES=0 goes without it)"
    if ! ip link show "$BRIDGE" >/dev/null 2>&1; then
        ip link add "$BRIDGE" type bridge \
            || die "cannot create a bridge for partition two (RLT_SLURM_TWO_NODES=0 goes without it)"
        ip addr add "$NET.1/24" dev "$BRIDGE"
    fi
    ip link set "$BRIDGE" up
    local node peer
    for node in "${PAIR[@]}"; do
        if ! ip netns exec "$node" true 2>/dev/null; then
            ip netns add "$node" \
                || die "cannot create network namespace $node (RLT_SLURM_TWO_NODES=0 goes without it)"
        fi
        if ! ip link show "$node-h" >/dev/null 2>&1; then
            ip link add "$node-h" type veth peer name "$node-c"
            ip link set "$node-c" netns "$node"
            ip netns exec "$node" ip addr add "$(pair_addr "$node")/24" dev "$node-c"
        fi
        ip link set "$node-h" master "$BRIDGE"
        ip link set "$node-h" up
        ip netns exec "$node" ip link set "$node-c" up
        ip netns exec "$node" ip link set lo up
        # The node's /etc/hosts: both nodes, and the controller's name at this
        # host's end of the bridge (SlurmctldHost is looked up there).
        mkdir -p "/etc/netns/$node"
        {
            echo "127.0.0.1 localhost"
            echo "$NET.1 $(hostname -s)"
            for peer in "${PAIR[@]}"; do echo "$(pair_addr "$peer") $peer"; done
        } >"/etc/netns/$node/hosts"
    done
}

# Undo net_up: only the objects it names, each if present. The host's end of a
# veth pair is deleted first: it does not always go with its namespace.
net_down() {
    local node
    for node in "${PAIR[@]}"; do
        ip link del "$node-h" 2>/dev/null || true
        ip netns del "$node" 2>/dev/null || true
        rm -rf "/etc/netns/$node"
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

# --- daemons -----------------------------------------------------------------

# A daemon is recorded under a key: its program's name (munged, slurmctld,
# slurmd for this host's node), or PROGRAM@NODE for a node of the pair.

# The PID recorded for a daemon, if that process still runs that program
# (a recycled PID belonging to something else does not count).
recorded_pid() {
    local name=$1 pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(awk -v n="$name" '$1 == n {print $2}' "$PID_FILE")
    [ -n "$pid" ] && alive "$pid" "$name" && echo "$pid"
}

alive() {
    local pid=$1 name=${2%%@*}
    [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$name" ]
}

record() {
    local name=$1 pid=$2
    touch "$PID_FILE"
    { grep -v "^$name " "$PID_FILE" || true; echo "$name $pid"; } >"$PID_FILE.new"
    mv "$PID_FILE.new" "$PID_FILE"
}

forget() {
    local name=$1
    [ -f "$PID_FILE" ] || return 0
    { grep -v "^$name " "$PID_FILE" || true; } >"$PID_FILE.new"
    mv "$PID_FILE.new" "$PID_FILE"
}

# Start a daemon that forks into the background and writes its own pid file;
# record that PID. $1 name, $2 its pid file, rest: the command.
start() {
    local name=$1 pidfile=$2 pid i
    shift 2
    if pid=$(recorded_pid "$name"); then
        return
    fi
    # A pid file left by a daemon we did not start: refuse rather than run two.
    if [ -s "$pidfile" ] && alive "$(cat "$pidfile")" "$name"; then
        die "$name already runs (PID $(cat "$pidfile")) but was not started by this script; stop it first"
    fi
    rm -f "$pidfile"
    "$@" || die "$name failed to start; see its log under /var/log"
    for i in $(seq 50); do
        if [ -s "$pidfile" ] && alive "$(cat "$pidfile")" "$name"; then
            record "$name" "$(cat "$pidfile")"
            log "$name started (PID $(cat "$pidfile"))"
            return
        fi
        sleep 0.2
    done
    die "$name did not come up within 10 s; see its log under /var/log"
}

stop() {
    local name=$1 pid i
    if pid=$(recorded_pid "$name"); then
        kill -TERM "$pid" 2>/dev/null || true
        for i in $(seq 50); do
            alive "$pid" "$name" || break
            sleep 0.2
        done
        if alive "$pid" "$name"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
        log "$name stopped (PID $pid)"
    fi
    forget "$name"
}

# The key of a node's slurmd.
slurmd_key() {
    if [ "$1" = "$(hostname -s)" ]; then echo slurmd; else echo "slurmd@$1"; fi
}

# Start a node's slurmd: this host's directly; a node of the pair inside its
# network namespace, with its own host name (a UTS namespace) and /etc/hosts
# (a mount namespace), so that the node's name is what its processes see and
# resolves to its own address. nsenter, not `ip netns exec`: that one mounts a
# new /sys without the cgroup file systems slurmd needs.
start_slurmd() {
    local node=$1
    if [ "$node" = "$(hostname -s)" ]; then
        start slurmd "/run/slurmd-$node.pid" slurmd
    else
        start "slurmd@$node" "/run/slurmd-$node.pid" \
            nsenter --net="/run/netns/$node" unshare --uts --mount sh -c \
            'mount --bind "/etc/netns/$1/hosts" /etc/hosts && hostname "$1" && exec slurmd -N "$1"' sh "$node"
    fi
}

node_state() {
    sinfo -h -n "$1" -o %T 2>/dev/null | head -n1
}

# Seconds since the epoch at which a node's recorded slurmd started, and at
# which slurmctld last heard that slurmd register. slurmctld keeps reporting a
# node it restored from its saved state as idle until SlurmdTimeout, so "idle"
# alone does not prove that this slurmd is serving the node.
slurmd_started() {
    local pid
    pid=$(recorded_pid "$(slurmd_key "$1")") || return 1
    date -d "$(ps -o lstart= -p "$pid")" +%s
}

slurmd_registered() {
    local t
    t=$(scontrol show node "$1" -o 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' | cut -d= -f2)
    [ -n "$t" ] && [ "$t" != None ] && date -d "$t" +%s
}

wait_idle() {
    local node=$1 i state="" started registered
    started=$(slurmd_started "$node") || die "slurmd of node $node is not running"
    for i in $(seq "$UP_TIMEOUT"); do
        state=$(node_state "$node" || true)
        registered=$(slurmd_registered "$node" || echo 0)
        case "$state" in
            idle|mixed|allocated|completing)
                # 2 s of slack: both times are whole seconds from different clocks' readings.
                if [ "$registered" -ge $(( started - 2 )) ]; then
                    log "node $node is $state"
                    return
                fi ;;
        esac
        sleep 1
    done
    echo "--- tail of /var/log/slurm/slurmctld.log" >&2
    tail -n 15 /var/log/slurm/slurmctld.log >&2 || true
    echo "--- tail of /var/log/slurm/slurmd-$node.log" >&2
    tail -n 15 "/var/log/slurm/slurmd-$node.log" >&2 || true
    die "node $node not idle after ${UP_TIMEOUT} s (state: ${state:-no answer from slurmctld})"
}

# --- subcommands -------------------------------------------------------------

up() {
    need_root
    install_packages
    munge_key
    dirs
    local new changed=0
    new=$(write_conf)
    if [ ! -f "$CONF" ] || [ "$new" != "$(cat "$CONF")" ]; then
        printf '%s\n' "$new" >"$CONF"
        changed=1
    fi
    # A changed config (other CPUs, memory, host name, nodes) needs the Slurm
    # daemons restarted; an unchanged one leaves running daemons alone
    # (idempotent up).
    if [ "$changed" -eq 1 ]; then
        stop_slurmds
        stop slurmctld
    fi
    [ "$TWO_NODES" = 0 ] || net_up
    start munged /run/munge/munged.pid runuser -u munge -- munged
    # Job state is kept across restarts, so job IDs keep counting up and
    # never name two different jobs.
    start slurmctld /run/slurmctld.pid slurmctld
    local node
    for node in $(nodes); do
        start_slurmd "$node"
    done
    for node in $(nodes); do
        wait_idle "$node"
    done
}

# Every slurmd this script started (the pair's too, whatever RLT_SLURM_TWO_NODES says now).
stop_slurmds() {
    local node
    stop slurmd
    for node in "${PAIR[@]}"; do
        stop "slurmd@$node"
    done
}

down() {
    need_root
    # Jobs first: slurmstepd (and the job's processes) outlive slurmd, and a
    # job left in the queue would run again at the next `up`.
    if recorded_pid slurmctld >/dev/null; then
        local jobs i
        # %A: the array job ID for every task of an array, so one scancel
        # takes the whole array.
        jobs=$(squeue -h -o %A 2>/dev/null | sort -u || true)
        if [ -n "$jobs" ]; then
            log "cancelling jobs: $(echo $jobs)"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            # squeue lists pending, running and completing jobs by default:
            # wait until none is left (cancelled jobs get KillWait to stop).
            for i in $(seq 60); do
                [ -z "$(squeue -h -o %i 2>/dev/null || true)" ] && break
                sleep 1
            done
        fi
    fi
    stop_slurmds
    stop slurmctld
    stop munged
    net_down
    rm -f "$PID_FILE"
}

status() {
    local name pid ok=0 state node
    for name in munged slurmctld $(for node in $(nodes); do slurmd_key "$node"; done); do
        if pid=$(recorded_pid "$name"); then
            echo "$name: running (PID $pid)"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    for node in $(nodes); do
        state=$(node_state "$node" || true)
        echo "node $node: ${state:-unknown}"
        case "$state" in
            idle|mixed|allocated|completing) ;;
            *) ok=1 ;;
        esac
    done
    return "$ok"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
