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
echo "BUILD-RESULT $(tr -d '\n' < /tmp/build.json)"
