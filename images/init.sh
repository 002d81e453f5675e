#!/bin/busybox sh
# PID 1 of every khil guest: mount what BPF selftests use, bring up QEMU user-mode networking, start SSH.
/bin/busybox mkdir -p /proc /sys /dev /tmp /run /var/log
# As on Debian: iproute2 keeps network namespaces in /run/netns, the BPF selftests open them by /var/run/netns.
/bin/busybox ln -s /run /var/run
# Every applet in /bin: dropbear gives SSH sessions PATH=/usr/bin:/bin.
/bin/busybox --install -s /bin
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
# kselftest's runner calls GNU timeout at /usr/bin/timeout (`--foreground`, 124 on expiry) for each test's
# settings: busybox's, adapted (it has no --foreground, kills at once for 0, which GNU's takes as no limit,
# and exits 143 when it had to kill).
/bin/busybox mkdir -p /usr/bin
cat >/usr/bin/timeout <<'EOF'
#!/bin/sh
[ "$1" = --foreground ] && shift
[ "$1" = 0 ] && shift && exec "$@"
busybox timeout "$@"
rc=$?
[ "$rc" -eq 143 ] && exit 124
exit "$rc"
EOF
chmod +x /usr/bin/timeout
mount -t devtmpfs devtmpfs /dev
# What udev would make: kselftest's runner writes each test's output to /dev/stdout.
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
# The initramfs has no /dev/console node, so the kernel could not give PID 1 a console: take it now.
exec 0</dev/console 1>/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /sys/fs/bpf
mount -t devpts -o gid=5,mode=620 devpts /dev/pts
mount -t bpf bpf /sys/fs/bpf
mount -t debugfs debugfs /sys/kernel/debug
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
mount -t tmpfs tmpfs /tmp
hostname khil
ip link set lo up
ip link set eth0 up
ip addr add 10.0.2.15/24 dev eth0
ip route add default via 10.0.2.2
mkdir -p /etc/dropbear
dropbearkey -t ed25519 -f /etc/dropbear/dropbear_ed25519_host_key >/dev/null 2>&1
# -s: no password logins; the only way in is the key khil put in /root/.ssh/authorized_keys.
dropbear -r /etc/dropbear/dropbear_ed25519_host_key -s -p 22 -P /run/dropbear.pid
echo "khil: guest ready: $(uname -r) $(uname -m) $(nproc) cpus"
# In a LAVA lab the commands come at the console, not over SSH: give it a shell at the prompt the job waits
# for (src/lava/job.ts), in the directory the suite's files were put in the image.
if grep -qw khil.console=shell /proc/cmdline; then
  export HOME=/root PS1='khil# '
  cd /root/khil 2>/dev/null
  exec setsid cttyhack sh
fi
while true; do sleep 3600; done
