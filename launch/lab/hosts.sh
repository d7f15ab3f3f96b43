#!/usr/bin/env bash
# N "hosts" on this machine for multi-node Open MPI runs: network namespaces kt-h1..kt-hN, each with its own hostname
# and one interface kt0 on a private /24 that exists only inside the lab, joined by a bridge or, with KT_DELAY, by a
# userspace forwarder that delays every packet. See README.md beside this file.
#
#   hosts.sh start    (re)build the hosts from the knobs below; a previous set-up is removed first
#   hosts.sh stop     remove the hosts, the link and every process still running on a host
#   hosts.sh status   the hosts, their link, and the generated files; exit 0 when up, 3 when not
#
# Knobs: KT_NHOSTS (default 2), KT_SLOTS (MPI slots per host, default 1), KT_DELAY (one-way delay, e.g. 2ms),
# KT_RATE (egress rate of each host, e.g. 1gbit), KT_MTU (default 9000), KT_LAB_DIR (default ${TMPDIR:-/tmp}/kt-lab).
set -euo pipefail
LAB_NAME=hosts
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

NET=10.77.0                 # host i is $NET.i; the /24 is never routed outside the lab's namespaces
SUBNET="$NET.0/24"
SWITCH=kt-switch            # namespace holding the bridge, so that the machine's own namespace gains no interface
UTS_DIR=/run/kt-lab/uts     # persistent UTS namespaces: each host keeps its hostname for every process entering it
NHOSTS="${KT_NHOSTS:-2}"
SLOTS="${KT_SLOTS:-1}"
DELAY="${KT_DELAY:-}"
RATE="${KT_RATE:-}"
MTU="${KT_MTU:-9000}"
case "$DELAY" in none | 0 | 0ms | 0us) DELAY="" ;; esac
case "$RATE" in none) RATE="" ;; esac

lab_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^(kt-h[0-9]+|$SWITCH)$" || true; }

# --- stop -----------------------------------------------------------------------------------------------------------

teardown() {
    local pid ns victims
    # The forwarder first: its TUN devices vanish with it.
    if pid="$(pid_from "$KT_LAB_DIR/delaylink.pid")" && grep -q delaylink.py "/proc/$pid/cmdline" 2>/dev/null; then
        stop_pid "$pid"
    fi
    rm -f "$KT_LAB_DIR/delaylink.pid"
    for ns in $(lab_namespaces); do
        # Deleting a namespace's name does not end it while processes live in it: a rank or orted left over from a
        # failed run would keep the old network alive (and its ports taken). Those are lab processes: end them.
        victims="$(ip netns pids "$ns" 2>/dev/null | xargs)"
        if [ -n "$victims" ]; then
            warn "ending processes still running on $ns: $victims"
            for pid in $victims; do stop_pid "$pid" 20; done
        fi
        ip netns del "$ns"
    done
    if [ -d "$UTS_DIR" ]; then
        local file
        for file in "$UTS_DIR"/*; do
            [ -e "$file" ] || continue
            umount "$file" 2>/dev/null || true
            rm -f "$file"
        done
        rmdir "$UTS_DIR" "$(dirname "$UTS_DIR")" 2>/dev/null || true
    fi
    rm -rf /etc/netns/kt-h[0-9]*
    rmdir /etc/netns 2>/dev/null || true
    rm -f "$KT_LAB_DIR"/{kt-mpirun,kt-agent,kt-enter,kt-hostfile,hosts.env}
    await_reaped
}

stop() {
    need_root
    if [ -z "$(lab_namespaces)" ] && [ ! -s "$KT_LAB_DIR/delaylink.pid" ] && [ ! -e "$KT_LAB_DIR/kt-mpirun" ]; then
        say "not running"
        return 0
    fi
    teardown
    say "stopped"
}

# --- start ----------------------------------------------------------------------------------------------------------

# A bridge in its own namespace and a veth pair per host: the kernel's own forwarding, full speed.
build_bridge() {
    local i
    ip netns add "$SWITCH"
    ip -n "$SWITCH" link add kt-br type bridge
    ip -n "$SWITCH" link set kt-br mtu "$MTU" up
    for i in $(seq 1 "$NHOSTS"); do
        # Created in place: one end in the switch, the other straight into the host as kt0.
        ip -n "$SWITCH" link add "kt-p$i" mtu "$MTU" type veth peer name kt0 mtu "$MTU" netns "kt-h$i"
        ip -n "$SWITCH" link set "kt-p$i" master kt-br up
    done
}

# The delaying forwarder: it creates kt-tun<i> here, and each moves into its host as kt0 (TUN devices keep working
# across namespaces). setsid and closed descriptors: it must outlive this script without holding a caller's pipe.
build_delayed_link() {
    local i
    ensure_packages python3
    rm -f "$KT_LAB_DIR/delaylink.pid"
    (
        for fd in /proc/$BASHPID/fd/*; do
            fd="${fd##*/}"
            [ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-" 2>/dev/null
        done
        exec setsid /usr/bin/python3 "$LAB_HOME/delaylink.py" --hosts "$NHOSTS" --delay "$DELAY" --net "$NET" \
            --ready "$KT_LAB_DIR/delaylink.pid"
    ) < /dev/null > "$KT_LAB_DIR/delaylink.log" 2>&1 &
    for i in $(seq 100); do [ -s "$KT_LAB_DIR/delaylink.pid" ] && break; sleep 0.05; done
    if [ ! -s "$KT_LAB_DIR/delaylink.pid" ]; then
        cat "$KT_LAB_DIR/delaylink.log" >&2
        die "the delaying forwarder (delaylink.py) did not start; its log is above"
    fi
    for i in $(seq 1 "$NHOSTS"); do
        ip link set "kt-tun$i" netns "kt-h$i"
        ip -n "kt-h$i" link set "kt-tun$i" name kt0
    done
}

write_tools() {
    local i
    : > "$KT_LAB_DIR/kt-hostfile"
    for i in $(seq 1 "$NHOSTS"); do echo "kt-h$i slots=$SLOTS" >> "$KT_LAB_DIR/kt-hostfile"; done

    # kt-enter: the one way into a host, used by the agent, kt-mpirun and people (`kt-enter kt-h2 ip addr`).
    cat > "$KT_LAB_DIR/kt-enter" <<EOF
#!/bin/sh
# kt-enter HOST [COMMAND [ARG...]]: runs COMMAND (default: a shell) on lab host HOST (kt-h<i> or $NET.<i>),
# inside its network namespace (where /etc/hosts names every host) and its UTS namespace (hostname HOST).
# Written by launch/lab/hosts.sh.
[ \$# -ge 1 ] || { echo "usage: kt-enter HOST [COMMAND...]" >&2; exit 2; }
host=\$1; shift
case "\$host" in
    kt-h[0-9]*) ns=\$host ;;
    $NET.*) ns=kt-h\${host##*.} ;;
    *) echo "kt-enter: \$host is not a lab host" >&2; exit 255 ;;
esac
[ -e "/run/netns/\$ns" ] && [ -e "$UTS_DIR/\$ns" ] || { echo "kt-enter: no host \$ns (hosts.sh start)" >&2; exit 255; }
[ \$# -gt 0 ] || set -- "\${SHELL:-/bin/sh}"
exec ip netns exec "\$ns" nsenter --uts="$UTS_DIR/\$ns" -- "\$@"
EOF

    # kt-agent: what mpirun calls instead of ssh ("agent [options] HOST WORDS..."). Like ssh, the words are joined
    # and run by a shell, with a fresh environment: what ranks on other hosts need must come through `mpirun -x`.
    cat > "$KT_LAB_DIR/kt-agent" <<EOF
#!/bin/sh
# rsh agent for mpirun on the lab hosts. Written by launch/lab/hosts.sh.
while [ \$# -gt 0 ]; do case "\$1" in -*) shift ;; *) break ;; esac; done
host=\$1; shift
exec env -i PATH="\$PATH" HOME="\${HOME:-/root}" \${LD_LIBRARY_PATH:+"LD_LIBRARY_PATH=\$LD_LIBRARY_PATH"} \\
    \${TMPDIR:+"TMPDIR=\$TMPDIR"} "$KT_LAB_DIR/kt-enter" "\$host" /bin/sh -c "\$*"
EOF

    # kt-mpirun: mpirun started on kt-h1. Its defaults travel as OMPI_MCA_* variables, not options, so that the
    # caller's own --hostfile, -H, --bind-to or --mca on the command line override them instead of clashing.
    cat > "$KT_LAB_DIR/kt-mpirun" <<EOF
#!/bin/sh
# kt-mpirun [mpirun options] PROGRAM [ARGS]: Open MPI's mpirun on the lab hosts kt-h1..kt-h$NHOSTS ($SLOTS slot(s) each,
# hostfile $KT_LAB_DIR/kt-hostfile unless -H/--hostfile says otherwise). Written by launch/lab/hosts.sh.
export OMPI_MCA_plm=rsh                        # ssh-style launch even inside a Slurm job
export OMPI_MCA_ras=^slurm                     # the hosts are the hostfile's, never a Slurm allocation's
export OMPI_MCA_plm_rsh_agent="$KT_LAB_DIR/kt-agent"
export OMPI_MCA_orte_default_hostfile="$KT_LAB_DIR/kt-hostfile"
export OMPI_MCA_btl=self,vader,tcp
export OMPI_MCA_btl_tcp_if_include=$SUBNET
export OMPI_MCA_oob_tcp_if_include=$SUBNET
# Every host sees the same cores: binding would pin each host's first rank to core 0.
export OMPI_MCA_hwloc_base_binding_policy=none
if [ "\$(id -u)" = 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
exec "$KT_LAB_DIR/kt-enter" kt-h1 mpirun "\$@"
EOF
    chmod +x "$KT_LAB_DIR"/{kt-enter,kt-agent,kt-mpirun}

    cat > "$KT_LAB_DIR/hosts.env" <<EOF
KT_NHOSTS=$NHOSTS
KT_SLOTS=$SLOTS
KT_DELAY=${DELAY:-none}
KT_RATE=${RATE:-none}
KT_MTU=$MTU
EOF
}

# Every host must reach kt-h1 before start returns. A TCP connection to a closed port is answered by a reset, so
# "refused" proves the round trip without ping or a listener.
check_links() {
    local i answer
    for i in $(seq 2 "$NHOSTS"); do
        answer="$(ip netns exec "kt-h$i" timeout 5 bash -c "exec 3<>/dev/tcp/$NET.1/9" 2>&1 || true)"
        case "$answer" in
            *"refused"*) ;;
            *) die "kt-h$i cannot reach kt-h1 ($NET.1): ${answer:-no answer in 5 s}" ;;
        esac
    done
}

start() {
    need_root
    [[ "$NHOSTS" =~ ^[1-9][0-9]*$ ]] && [ "$NHOSTS" -le 250 ] || die "KT_NHOSTS=$NHOSTS: give a number from 1 to 250"
    [[ "$SLOTS" =~ ^[1-9][0-9]*$ ]] || die "KT_SLOTS=$SLOTS: give a positive number"
    [[ "$MTU" =~ ^[0-9]+$ ]] && [ "$MTU" -ge 576 ] && [ "$MTU" -le 65535 ] || die "KT_MTU=$MTU: give 576..65535"
    if [ -n "$DELAY" ] && ! [[ "$DELAY" =~ ^[0-9]*\.?[0-9]+(us|ms|s)?$ ]]; then
        die "KT_DELAY=$DELAY: give a delay such as 2ms or 500us"
    fi
    ensure_packages iproute2
    command -v mpirun > /dev/null || warn "mpirun is not installed (openmpi-bin): kt-mpirun will not run until it is"
    mkdir -p "$KT_LAB_DIR"

    # A rebuild, not an update: old links, forwarder and leftovers go first.
    teardown
    trap 'rc=$?; if [ $rc -ne 0 ]; then warn "start failed: removing what it built"; teardown; fi' EXIT

    local i hosts_file
    hosts_file="127.0.0.1 localhost"$'\n'"::1 localhost"$'\n'
    for i in $(seq 1 "$NHOSTS"); do hosts_file+="$NET.$i kt-h$i"$'\n'; done
    mkdir -p "$UTS_DIR"
    for i in $(seq 1 "$NHOSTS"); do
        ip netns add "kt-h$i"
        ip -n "kt-h$i" link set lo up
        # `ip netns exec` mounts /etc/netns/<ns>/hosts over /etc/hosts: the hosts resolve each other by name.
        mkdir -p "/etc/netns/kt-h$i"
        printf '%s' "$hosts_file" > "/etc/netns/kt-h$i/hosts"
        touch "$UTS_DIR/kt-h$i"
        unshare --uts="$UTS_DIR/kt-h$i" hostname "kt-h$i"
    done

    if [ -n "$DELAY" ]; then build_delayed_link; else build_bridge; fi

    for i in $(seq 1 "$NHOSTS"); do
        # No IPv6 on the lab link: its neighbour discovery would only be noise through the forwarder.
        ip netns exec "kt-h$i" sysctl -qw net.ipv6.conf.kt0.disable_ipv6=1 2> /dev/null || true
        ip -n "kt-h$i" link set kt0 mtu "$MTU" up
        ip -n "kt-h$i" addr add "$NET.$i/24" dev kt0
        if [ -n "$RATE" ]; then
            # tbf is built into these kernels (netem is not). The burst must hold a few jumbo frames.
            ip netns exec "kt-h$i" tc qdisc replace dev kt0 root tbf rate "$RATE" burst 256k latency 50ms
        fi
    done

    check_links
    write_tools
    trap - EXIT
    local link="bridge"
    [ -n "$DELAY" ] && link="forwarder with one-way delay $DELAY"
    say "up: kt-h1..kt-h$NHOSTS on $SUBNET, $link${RATE:+, $RATE per host}, mtu $MTU;" \
        "run $KT_LAB_DIR/kt-mpirun -np $NHOSTS PROGRAM"
}

status() {
    local namespaces
    namespaces="$(lab_namespaces | xargs)"
    if [ -z "$namespaces" ]; then
        echo "hosts: not running"
        return 3
    fi
    echo "hosts: namespaces $namespaces"
    [ -s "$KT_LAB_DIR/hosts.env" ] && echo "settings: $(xargs < "$KT_LAB_DIR/hosts.env")"
    local pid
    if pid="$(pid_from "$KT_LAB_DIR/delaylink.pid")"; then echo "delaying forwarder: pid $pid"; fi
    local ns
    for ns in $namespaces; do
        [ "$ns" = "$SWITCH" ] && continue
        echo "$ns: $(ip -n "$ns" -br addr show dev kt0 2>/dev/null | awk '{print $3}')" \
            "$(ip netns exec "$ns" tc qdisc show dev kt0 2>/dev/null | grep -o 'tbf.*rate [^ ]*' || true)"
    done
    if [ -x "$KT_LAB_DIR/kt-mpirun" ]; then
        echo "files: $KT_LAB_DIR/kt-mpirun, kt-hostfile, kt-enter, kt-agent"
        return 0
    fi
    return 1
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
