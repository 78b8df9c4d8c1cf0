#!/usr/bin/env bash
# A real one-node Slurm cluster on this machine, for rlt's cluster tests.
#
#   bash scripts/slurm-cluster.sh up       # install (Debian, root), configure, start, wait for the node
#   bash scripts/slurm-cluster.sh status   # exit 0 when the node accepts jobs
#   bash scripts/slurm-cluster.sh down     # cancel every job, stop the daemons this script started
#
# slurmctld and slurmd run on this host (no systemd: the binaries are started
# directly), authenticated by munge. There is no accounting database: the tests
# need sbatch, srun, arrays, dependencies, requeue and signals, not sacct.
# Settings can be overridden from the environment:
#   RLT_SLURM_CPUS   CPUs the node advertises (default: nproc). More than the
#                    real cores lets more tiny test jobs run side by side.
#   RLT_SLURM_STATE  where the PIDs of the started daemons are kept.
set -euo pipefail

STATE_DIR=${RLT_SLURM_STATE:-/var/lib/rlt-slurm}
PID_FILE=$STATE_DIR/daemons.pid      # "name pid" lines: what `down` may stop
CONF=/etc/slurm/slurm.conf
MUNGE_KEY=/etc/munge/munge.key
UP_TIMEOUT=60                        # seconds to wait for the node to be idle

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
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info

NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
}

# --- daemons -----------------------------------------------------------------

# The PID recorded for a daemon, if that process still runs that program
# (a recycled PID belonging to something else does not count).
recorded_pid() {
    local name=$1 pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(awk -v n="$name" '$1 == n {print $2}' "$PID_FILE")
    [ -n "$pid" ] && alive "$pid" "$name" && echo "$pid"
}

alive() {
    local pid=$1 name=$2
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

node_state() {
    sinfo -h -n "$(hostname -s)" -o %T 2>/dev/null | head -n1
}

# Seconds since the epoch at which the recorded slurmd started, and at which
# slurmctld last heard that slurmd register. slurmctld keeps reporting a node
# it restored from its saved state as idle until SlurmdTimeout, so "idle"
# alone does not prove that this slurmd is serving the node.
slurmd_started() {
    local pid
    pid=$(recorded_pid slurmd) || return 1
    date -d "$(ps -o lstart= -p "$pid")" +%s
}

slurmd_registered() {
    local t
    t=$(scontrol show node "$(hostname -s)" -o 2>/dev/null | grep -o 'SlurmdStartTime=[^ ]*' | cut -d= -f2)
    [ -n "$t" ] && [ "$t" != None ] && date -d "$t" +%s
}

wait_idle() {
    local i state="" started registered
    started=$(slurmd_started) || die "slurmd is not running"
    for i in $(seq "$UP_TIMEOUT"); do
        state=$(node_state || true)
        registered=$(slurmd_registered || echo 0)
        case "$state" in
            idle|mixed|allocated|completing)
                # 2 s of slack: both times are whole seconds from different clocks' readings.
                if [ "$registered" -ge $(( started - 2 )) ]; then
                    log "node $(hostname -s) is $state"
                    return
                fi ;;
        esac
        sleep 1
    done
    echo "--- tail of /var/log/slurm/slurmctld.log" >&2
    tail -n 15 /var/log/slurm/slurmctld.log >&2 || true
    echo "--- tail of /var/log/slurm/slurmd.log" >&2
    tail -n 15 /var/log/slurm/slurmd.log >&2 || true
    die "node $(hostname -s) not idle after ${UP_TIMEOUT} s (state: ${state:-no answer from slurmctld})"
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
    # A changed config (other CPUs, memory, host name) needs both Slurm daemons
    # restarted; an unchanged one leaves running daemons alone (idempotent up).
    if [ "$changed" -eq 1 ]; then
        stop slurmd
        stop slurmctld
    fi
    start munged /run/munge/munged.pid runuser -u munge -- munged
    # Job state is kept across restarts, so job IDs keep counting up and
    # never name two different jobs.
    start slurmctld /run/slurmctld.pid slurmctld
    start slurmd /run/slurmd.pid slurmd
    wait_idle
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
    stop slurmd
    stop slurmctld
    stop munged
    rm -f "$PID_FILE"
}

status() {
    local name pid ok=0 state
    for name in munged slurmctld slurmd; do
        if pid=$(recorded_pid "$name"); then
            echo "$name: running (PID $pid)"
        else
            echo "$name: not running"
            ok=1
        fi
    done
    state=$(node_state || true)
    echo "node $(hostname -s): ${state:-unknown}"
    case "$state" in
        idle|mixed|allocated|completing) ;;
        *) ok=1 ;;
    esac
    return "$ok"
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) status ;;
    *) echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
