#!/usr/bin/env bash
# A second "host" on this machine for the multi-host SCOOP test (tests/test_multihost.py).
#
#   setup_netns.sh up   DIR MAIN_HOSTNAME   network namespace + veth pair + sshd inside it
#   setup_netns.sh down DIR                 remove all of it (also what an aborted run left)
#
# The namespace "deapnn-mh" holds 10.200.0.2/24, the main host 10.200.0.1/24 (veth pair
# deapnn-mh0 / deapnn-mh1). Inside the namespace MAIN_HOSTNAME resolves to 10.200.0.1
# (/etc/netns/deapnn-mh/hosts), so SCOOP's broker and origin, named by the hosts file, are reached
# over the veth pair only. An sshd listening on 10.200.0.2:22 accepts this user with a key made
# in DIR; DIR/bin/ssh is an ssh that uses that key (put DIR/bin first on PATH). The filesystem is
# shared, as SCOOP requires (same checkout, same Python). Needs root, `ip netns`, sshd, unshare.
#
# DIR/hostfile names the two hosts (MAIN_HOSTNAME 1, 10.200.0.2 1). DIR/bin/as-main-host CMD runs
# CMD where MAIN_HOSTNAME resolves to 10.200.0.1 (a private mount namespace with DIR/hosts_main
# over /etc/hosts): SCOOP finds out which host it is on by resolving the host's own name, and a
# machine whose name resolves to 127.0.0.1 (Debian's default without a fixed address) cannot host
# the broker of a remote worker; on a cluster the name resolves to a routable address already.
set -euo pipefail
NS=deapnn-mh
HOST_IF=deapnn-mh0
NS_IF=deapnn-mh1
HOST_IP=10.200.0.1
NS_IP=10.200.0.2
cmd=${1:?up|down}
dir=${2:?directory}

down() {
    if [ -f "$dir/sshd.pid" ]; then
        kill "$(cat "$dir/sshd.pid")" 2>/dev/null || true
        rm -f "$dir/sshd.pid"
    fi
    if ip netns list 2>/dev/null | grep -qw "$NS"; then
        # every process still in the namespace (sshd, its sessions, remote workers)
        for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
        ip netns del "$NS" 2>/dev/null || true
    fi
    ip link del "$HOST_IF" 2>/dev/null || true
    rm -rf "/etc/netns/$NS"
}

up() {
    local main=${3:?main host name}
    down                                          # leftovers of an aborted run first
    mkdir -p "$dir/bin" /run/sshd
    chmod 700 "$dir"
    ip netns add "$NS"
    ip link add "$HOST_IF" type veth peer name "$NS_IF"
    ip link set "$NS_IF" netns "$NS"
    ip addr add "$HOST_IP/24" dev "$HOST_IF"
    ip link set "$HOST_IF" up
    ip netns exec "$NS" ip addr add "$NS_IP/24" dev "$NS_IF"
    ip netns exec "$NS" ip link set "$NS_IF" up
    ip netns exec "$NS" ip link set lo up
    mkdir -p "/etc/netns/$NS"
    printf '127.0.0.1 localhost\n%s %s\n%s %s\n' "$HOST_IP" "$main" "$NS_IP" "$NS" \
        > "/etc/netns/$NS/hosts"

    rm -f "$dir/host_key" "$dir/host_key.pub" "$dir/id_ed25519" "$dir/id_ed25519.pub"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/host_key"
    ssh-keygen -q -t ed25519 -N '' -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    cat > "$dir/sshd_config" <<CONF
ListenAddress $NS_IP
Port 22
HostKey $dir/host_key
PidFile $dir/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PrintMotd no
AcceptEnv *
CONF
    ip netns exec "$NS" "$(command -v sshd || echo /usr/sbin/sshd)" -f "$dir/sshd_config" \
        -E "$dir/sshd.log"
    cat > "$dir/bin/ssh" <<WRAP
#!/bin/sh
exec $(command -v ssh) -i $dir/id_ed25519 -F /dev/null -oIdentitiesOnly=yes \
    -oStrictHostKeyChecking=no -oUserKnownHostsFile=/dev/null -oLogLevel=ERROR "\$@"
WRAP
    chmod +x "$dir/bin/ssh"
    printf '127.0.0.1 localhost\n%s %s\n' "$HOST_IP" "$main" > "$dir/hosts_main"
    printf '%s 1\n%s 1\n' "$main" "$NS_IP" > "$dir/hostfile"
    cat > "$dir/bin/as-main-host" <<WRAP
#!/bin/sh
exec unshare --mount --propagation private sh -c 'mount --bind "\$0" /etc/hosts && exec "\$@"' \
    "$dir/hosts_main" "\$@"
WRAP
    chmod +x "$dir/bin/as-main-host"
    for _ in $(seq 50); do                        # until sshd answers
        if "$dir/bin/ssh" -oBatchMode=yes -oConnectTimeout=2 "$NS_IP" true 2>/dev/null; then
            return 0
        fi
        sleep 0.2
    done
    echo "sshd in namespace $NS does not answer; see $dir/sshd.log" >&2
    return 1
}

case "$cmd" in
    up) up "$@" ;;
    down) down ;;
    *) echo "usage: $0 up DIR MAIN_HOSTNAME | down DIR" >&2; exit 2 ;;
esac
