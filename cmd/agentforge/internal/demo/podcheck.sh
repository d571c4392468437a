# The demo's pod check: run in the built agent image as a Kubernetes pod
# runs it (uid 1000, privileged, an emptyDir at podman's storage, no
# network; bash is PID 1 in place of the entrypoint). Every line must
# succeed. Its last step starts the image's entrypoint as PID 1, the way a
# pod starts it, and checks the init there.
set -euo pipefail
# The nodes this check stands in for run cgroups v2; this machine may not.
export PODMAN_IGNORE_CGROUPSV1_WARNING=1
echo "user: $(id)"
grep -q '^jenkins:1:999$' /etc/subuid && grep -q '^jenkins:1001:64535$' /etc/subuid
grep -q '^jenkins:1:999$' /etc/subgid && grep -q '^jenkins:1001:64535$' /etc/subgid
echo "subordinate ids of jenkins: 1:999 and 1001:64535"
# Another uid (a pod's runAsUser, OpenShift's arbitrary uid) reaches the
# agent's work folder, where the pod mounts the workspace: the home folder
# above it is not private.
mode=$(stat -c %a /home/jenkins)
(( (8#$mode & 8#005) == 8#005 )) || { echo "/home/jenkins is $mode: another uid cannot reach /home/jenkins/agent"; exit 1; }
echo "home folder: $mode, another uid reaches /home/jenkins/agent"

# Java: Jenkins 2.545 and later refuse agents older than 21.
java -version 2>&1 | sed -n 1p
spec=$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p')
test "$spec" -ge 21
echo "java: specification version $spec (>= 21)"
# The agent jar starts on it (remoting answers -version and exits).
remoting=$(java -jar /usr/share/jenkins/agent.jar -version)
echo "agent jar starts: ${remoting//$'\n'/ / }"

# CPython and its tools: the versions the definition pins (recorded in the
# image's environment), also in a new venv (ensurepip takes them from the
# image's wheel folder), and no older bundled copies left to install.
python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, readline, zlib, _uuid, _decimal; print("python modules ok,", ssl.OPENSSL_VERSION)'
versions=$(python3 -c 'import sys; from importlib.metadata import version; print(*map(version, sys.argv[1:]))' pip setuptools wheel)
echo "python3: $(python3 --version 2>&1), pip setuptools wheel: $versions"
test "$versions" = "$PYTHON_PIP_VERSION $PYTHON_SETUPTOOLS_VERSION $PYTHON_WHEEL_VERSION"
python3 -m venv /tmp/venv
venv=$(/tmp/venv/bin/python -c 'import sys; from importlib.metadata import version; print(*map(version, sys.argv[1:]))' pip setuptools)
echo "new venv: pip setuptools $venv"
test "$venv" = "$PYTHON_PIP_VERSION $PYTHON_SETUPTOOLS_VERSION"
if compgen -G '/usr/local/lib/python3*/ensurepip/_bundled/*.whl'; then echo "bundled wheels left"; exit 1; fi
git lfs version

if [ -n "${AGENTFORGE_CHROOTED:-}" ]; then
  # The machine that started this container refuses user namespaces (a
  # chroot, for example): rootless podman cannot start here, and no PID
  # namespace can be made for the SIGTERM check. Say so.
  echo "SKIPPED: rootless podman and SIGTERM through the init (the machine running this check refuses user namespaces)"
else
  driver=$(podman info --format '{{.Store.GraphDriverName}}')
  echo "podman storage driver: $driver"
  test "$driver" = overlay
  # A Containerfile with a RUN step, built and run by rootless podman, from a
  # root file system made of the agent's own shell and the libraries it links
  # (no registry, no network, any architecture).
  ctx=$(mktemp -d)
  mkdir -p "$ctx/root"
  for f in /bin/sh $(ldd /bin/sh | grep -o '/[^ ]*'); do cp --parents -L "$f" "$ctx/root/"; done
  printf '%s\n' 'FROM scratch' 'COPY root/ /' 'RUN ["/bin/sh", "-c", "echo built by rootless podman in the agent > /built"]' \
    'CMD ["/bin/sh", "-c", "read line < /built; echo $line"]' > "$ctx/Containerfile"
  podman build -q -t localhost/pod-check "$ctx" >/dev/null
  test "$(podman run --rm localhost/pod-check)" = "built by rootless podman in the agent"
  echo "rootless podman: build with RUN and run ok"

  # SIGTERM, as the kubelet sends it to a container's PID 1: the entrypoint
  # started as PID 1 of a new PID namespace, with the environment the
  # Kubernetes plugin sets (a Jenkins that cannot be reached: the agent
  # keeps trying), must end with the agent's own status within seconds.
  JENKINS_URL=http://127.0.0.1:9/ JENKINS_SECRET=pod-check-not-a-secret JENKINS_AGENT_NAME=pod-check \
    JENKINS_AGENT_WORKDIR=/tmp/agent-work \
    unshare --user --map-current-user --pid --fork --mount-proc --kill-child \
    /usr/local/bin/jenkins-agent >/tmp/agent.log 2>&1 &
  ns=$!
  agent=
  for _ in $(seq 300); do
    agent=$(pgrep -x java || true)
    [ -z "$agent" ] || break
    sleep 0.1
  done
  [ -n "$agent" ] || { cat /tmp/agent.log; echo "the agent did not start"; exit 1; }
  cmdline=$(tr '\0' ' ' < "/proc/$agent/cmdline")
  # The secret reaches the agent through a pipe it reads (-secret @FILE), not
  # on its command line nor in its environment, which build steps inherit.
  [[ $cmdline == *"-jar /usr/share/jenkins/agent.jar -secret @/dev/fd/3 -name pod-check"* ]]
  [[ $cmdline != *pod-check-not-a-secret* ]] || { echo "the secret is on the agent's command line"; exit 1; }
  ! tr '\0' '\n' < "/proc/$agent/environ" | grep -q '^JENKINS_SECRET=' || { echo "JENKINS_SECRET is in the agent's environment"; exit 1; }
  init=$(pgrep -P "$ns")
  pid1=$(readlink "/proc/$init/exe")
  [ "$pid1" = /usr/bin/catatonit ] || { echo "PID 1 of the agent's namespace is $pid1, not /usr/bin/catatonit"; exit 1; }
  [ "$(awk '{print $4}' "/proc/$agent/stat")" = "$init" ] || { echo "the agent is not PID 1's child"; exit 1; }
  echo "SIGTERM check: the agent (java -jar agent.jar) runs as the child of PID 1, /usr/bin/catatonit, in its own PID namespace"
  sleep 2 # the agent is up and running
  start=$(date +%s%N)
  kill -TERM "$init"
  status=0
  wait "$ns" || status=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "SIGTERM to PID 1: catatonit passed it on, and PID 1 ended with the agent's status $status after $ms ms"
  [ "$status" = 143 ] && [ "$ms" -lt 10000 ] || { echo "want status 143 within 10 s"; cat /tmp/agent.log; exit 1; }
  if kill -0 "$agent" 2>/dev/null; then echo "the agent is still running"; exit 1; fi
fi

# Last: the image's entrypoint as PID 1, as a pod starts it (the entrypoint
# is jenkins-agent, also when a pod template's command names it), here with
# one command to run. It must put catatonit in front of itself as PID 1,
# which reaps orphans; the command's status is the container's.
cat > /tmp/init-check <<'EOF'
#!/bin/bash
set -euo pipefail
echo "PID 1: $(tr '\0' ' ' < /proc/1/cmdline | sed 's/ $//')"
[ "$(readlink /proc/1/exe)" = /usr/bin/catatonit ] || { echo "PID 1 is not /usr/bin/catatonit"; exit 1; }
[ "$$" != 1 ] || { echo "the command is PID 1"; exit 1; }
# An orphan: its parent exits at once, so it becomes PID 1's child.
orphan=$(bash -c 'sleep 1 >/dev/null 2>&1 & echo $!')
for _ in $(seq 50); do
  parent=$(awk '{print $4}' "/proc/$orphan/stat")
  [ "$parent" != 1 ] || break
  sleep 0.02
done
[ "$parent" = 1 ] || { echo "the orphan's parent is $parent, not PID 1"; exit 1; }
sleep 2
if [ -e "/proc/$orphan" ]; then
  echo "the orphan was not reaped: $(cat "/proc/$orphan/stat")"
  exit 1
fi
zombies=$(ps -eo stat=,pid=,args= | awk '$1 ~ /^Z/')
[ -z "$zombies" ] || { echo "zombies: $zombies"; exit 1; }
echo "init: catatonit is PID 1 in front of jenkins-agent; an orphan was reparented to it and reaped, no zombie left"
EOF
chmod +x /tmp/init-check
exec /usr/local/bin/jenkins-agent /tmp/init-check
