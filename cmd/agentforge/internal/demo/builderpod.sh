# Run inside agentforge's builder image the way a Kubernetes pod runs it
# (privileged, root, an emptyDir at /var/lib/containers, the node's network,
# the workspace mounted): one build of testdata/busybox with the agentforge
# in the image, in-process buildah with chroot isolation, then its checks.
# The demo reads the BUILD-RESULT line.
set -euo pipefail
echo "builder: $(agentforge --version)"
echo "builder: uid $(id -u), gid $(id -g); storage $(sed -n 's/^driver *= *"\(.*\)"/\1/p' /etc/containers/storage.conf) on /var/lib/containers"
agentforge build /workspace/busybox --revision "$REVISION" --set "debian.archive=$DEBIAN_ARCHIVE" \
    --cache-dir /var/cache/agentforge -o json > /tmp/build.json
agentforge verify localhost/busybox-demo:1.0.0
agentforge run localhost/busybox-demo:1.0.0 -- cat /etc/greeting
# PID 1 as pod.yaml starts it (its command and args, in POD_COMMAND, one
# word a line), in a PID namespace of its own as the pod's container has.
# A Jenkins sh step reaches the container through an exec (the Kubernetes
# plugin's container step), not as PID 1's child, and durable-task starts
# the step's wrapper in the background, so the wrapper is reparented to
# PID 1 when its launcher exits: PID 1 must reap it, or every step leaves a
# zombie (sleep, as PID 1, never does).
mapfile -t pod_command <<< "$POD_COMMAND"
# --kill-child: unshare's end (the trap's SIGKILL) ends the namespace, so
# nothing of it outlives the check, whatever fails below.
unshare --pid --fork --mount-proc --kill-child "${pod_command[@]}" &
ns=$!
trap 'kill -KILL "$ns" 2>/dev/null || true' EXIT
# alive PID: the process runs (not gone, not a zombie).
alive() { local s; s=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1; [ -n "$s" ] && [ "$s" != Z ]; }
init=
for _ in $(seq 100); do
  init=$(grep -l "^[0-9]* ([^)]*) [A-Z] $ns " /proc/[0-9]*/stat 2>/dev/null | head -1 | cut -d/ -f3 || true)
  [ -z "$init" ] || break
  sleep 0.05
done
[ -n "$init" ] || { echo "pod.yaml's command did not start: ${pod_command[*]}"; exit 1; }
# in_pod SCRIPT: runs SCRIPT in the namespace, as an exec into the pod does.
# --root and --wd: PID 1's own root, also where this script runs chrooted
# (entering a mount namespace otherwise lands at its real root, whose /proc
# is not the namespace's).
in_pod() { nsenter --target "$init" --pid --mount --root --wd -- sh -c "$1" || { echo "pod.yaml's PID 1 (${pod_command[*]}) is gone" >&2; return 1; }; }
step='sleep 1 >/dev/null 2>&1 & echo $!'
orphan=$(in_pod "$step")
# The step's process ends after a second: PID 1 reaps it (it is gone), or
# it stays a zombie. Polled, not slept on: a busy machine is slow, and a
# zombie caught in the instant before a reap is no zombie.
state=
for _ in $(seq 100); do
  sleep 0.1
  state=$(in_pod "cat /proc/$orphan/stat 2>/dev/null || true" | sed 's/^.*) //' | cut -d' ' -f1)
  [ -n "$state" ] || break
done
if [ -n "$state" ]; then
  states=$(in_pod 'cat /proc/[0-9]*/stat 2>/dev/null || true' | awk '{print $1, $2, $3}')
  if [ "$state" = Z ]; then
    echo "PID 1 ($(tr '\0' ' ' < "/proc/$init/cmdline")) left a step's background process a zombie:"
  else
    echo "the step's background process $orphan is still there ($state) after 10 s:"
  fi
  echo "$states"; exit 1
fi
# Kubernetes stops the pod with a SIGTERM to PID 1 and a SIGKILL after the
# grace period: PID 1 must end on it. An init in a PID namespace gets only
# the signals it handles (a shell as PID 1 does not end on it).
kill -TERM "$init"
for _ in $(seq 100); do
  alive "$init" || break
  sleep 0.1
done
if alive "$init"; then
  echo "pod.yaml's PID 1 (${pod_command[*]}) did not end within 10 s of a SIGTERM: the pod would wait out its grace period"; exit 1
fi
status=0
wait "$ns" || status=$?
trap - EXIT
echo "init: pod.yaml's PID 1 ($(echo "${pod_command[*]}")) reaped a step's background process (no zombie) and ended on SIGTERM with status $status"
echo "BUILD-RESULT $(tr -d '\n' < /tmp/build.json)"
