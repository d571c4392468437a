# The demo's pod check: run in the built agent image as a Kubernetes pod
# runs it (uid 1000, privileged, an emptyDir at podman's storage, no
# network). Every line must succeed.
set -euo pipefail
echo "user: $(id)"
grep '^jenkins:1:999$' /etc/subuid && grep '^jenkins:1001:64535$' /etc/subuid
grep '^jenkins:1:999$' /etc/subgid && grep '^jenkins:1001:64535$' /etc/subgid
python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, readline, zlib, _uuid, _decimal; print("python modules ok,", ssl.OPENSSL_VERSION)'
python3 -m venv /tmp/venv && /tmp/venv/bin/pip --version
git lfs version
if [ -n "${AGENTFORGE_CHROOTED:-}" ]; then
  # The machine that started this container refuses user namespaces (a
  # chroot, for example): rootless podman cannot start here. Say so.
  echo "SKIPPED: rootless podman (the machine running this check refuses user namespaces)"
  exit 0
fi
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
