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
unshare --pid --fork --mount-proc "${pod_command[@]}" &
ns=$!
init=
for _ in $(seq 100); do
  init=$(grep -l "^[0-9]* ([^)]*) [A-Z] $ns " /proc/[0-9]*/stat 2>/dev/null | head -1 | cut -d/ -f3 || true)
  [ -z "$init" ] || break
  sleep 0.05
done
[ -n "$init" ] || { echo "pod.yaml's command did not start: ${pod_command[*]}"; exit 1; }
step='sleep 1 >/dev/null 2>&1 & echo $!'
orphan=$(nsenter --target "$init" --pid --mount -- sh -c "$step")
sleep 2
states=$(nsenter --target "$init" --pid --mount -- sh -c 'cat /proc/[0-9]*/stat' | awk '{print $1, $2, $3}')
echo "$states" | awk '$3 == "Z" {bad=1} END {exit bad}' || {
  echo "PID 1 ($(tr '\0' ' ' < "/proc/$init/cmdline")) left a step's background process a zombie:"; echo "$states"; exit 1; }
if echo "$states" | awk -v p="$orphan" '$1 == p {found=1} END {exit !found}'; then
  echo "the step's background process $orphan is still there"; exit 1
fi
kill -TERM "$init"
status=0
wait "$ns" || status=$?
echo "init: pod.yaml's PID 1 ($(echo "${pod_command[*]}")) reaped a step's background process (no zombie) and ended on SIGTERM with status $status"
echo "BUILD-RESULT $(tr -d '\n' < /tmp/build.json)"
