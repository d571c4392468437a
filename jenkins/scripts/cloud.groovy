// agentforge: the plugin version check and the cloud lookup every script
// starts with (spliced in where it says @@CLOUD@@). It uses p and emit and
// defines cloud, the KubernetesCloud that p.cloud names; otherwise it says
// why and the script stops.

// PodTemplate(String id) and getId() came with Kubernetes plugin 1.27.2;
// without them a template cannot keep its identity: say so and stop.
try {
    PodTemplate.getConstructor(String)
} catch (NoSuchMethodException ignored) {
    emit([status: 'error', reason: 'plugin-too-old'])
    return
}
def cloud = Jenkins.get().clouds.getByName(p.cloud as String)
if (cloud == null) {
    emit([status: 'error', reason: 'no-such-cloud', clouds: Jenkins.get().clouds.collect { it.name }])
    return
}
if (!(cloud instanceof KubernetesCloud)) {
    emit([status: 'error', reason: 'not-kubernetes', kind: cloud.getClass().name])
    return
}
