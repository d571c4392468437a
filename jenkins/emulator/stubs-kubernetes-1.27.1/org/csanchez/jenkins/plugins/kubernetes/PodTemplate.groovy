package org.csanchez.jenkins.plugins.kubernetes

import hudson.model.Node

// Stub of PodTemplate as it was in kubernetes-plugin 1.27.1 (tag
// kubernetes-1.27.1, commit d63bc590,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodTemplate.java),
// used by the emulator for KubernetesPluginVersion < 1.27.2. It has no id:
// no field, no getId(), and no PodTemplate(String id) constructor
// (added in 1.27.2, commit dd1560a1, L194-201). Its constructors are
// @DataBoundConstructor PodTemplate() (L182-184), the copy constructor
// (L186-191) and the deprecated PodTemplate(String image, List volumes)
// (L193-196). setName, setNamespace and setLabel stored the value as given
// then (L226-242, L432-435); setServiceAccount used Util.fixEmpty (L527-530).
class PodTemplate {
    // Properties: Groovy writes the getters, and the setters not below.
    String name
    String label
    String namespace
    String serviceAccount
    int idleMinutes
    int instanceCap = Integer.MAX_VALUE
    private Node.Mode nodeUsageMode
    private final List<ContainerTemplate> containers = []
    private List<PodAnnotation> annotations = []

    PodTemplate() {
    }

    PodTemplate(PodTemplate from) {
        applyState(from.toState())
    }

    @Deprecated
    PodTemplate(String image, List volumes) {
        if (image != null) {
            containers.add(new ContainerTemplate(null, image))
        }
    }

    void setServiceAccount(String v) { serviceAccount = hudson.Util.fixEmpty(v) }

    void setInstanceCap(int v) { instanceCap = v < 0 ? Integer.MAX_VALUE : v }

    Node.Mode getNodeUsageMode() { nodeUsageMode == null ? Node.Mode.EXCLUSIVE : nodeUsageMode }

    void setNodeUsageMode(Node.Mode mode) { nodeUsageMode = mode == Node.Mode.EXCLUSIVE ? null : mode }

    void setNodeUsageMode(String mode) { setNodeUsageMode(Node.Mode.valueOf(mode)) }

    List<ContainerTemplate> getContainers() { containers }

    void setContainers(List<ContainerTemplate> items) {
        synchronized (containers) {
            containers.clear()
            containers.addAll(items)
        }
    }

    List<PodAnnotation> getAnnotations() { annotations == null ? Collections.emptyList() : annotations }

    void setAnnotations(List<PodAnnotation> v) {
        if (v != null) {
            annotations = new ArrayList<PodAnnotation>(v)
        }
    }

    // Test-only: the emulator's state file.
    Map toState() {
        [name: name, label: label, namespace: namespace, serviceAccount: serviceAccount,
         idleMinutes: idleMinutes, instanceCap: instanceCap, nodeUsageMode: nodeUsageMode?.name(),
         containers: containers.collect { it.toState() },
         annotations: annotations.collect { [key: it.key, value: it.value] }]
    }

    private void applyState(Map m) {
        name = m.name as String
        label = m.label as String
        namespace = m.namespace as String
        serviceAccount = m.serviceAccount as String
        idleMinutes = (m.idleMinutes ?: 0) as int
        instanceCap = m.containsKey('instanceCap') ? m.instanceCap as int : Integer.MAX_VALUE
        nodeUsageMode = m.nodeUsageMode ? Node.Mode.valueOf(m.nodeUsageMode as String) : null
        containers.clear()
        containers.addAll((m.containers ?: []).collect { ContainerTemplate.fromState(it as Map) })
        annotations = (m.annotations ?: []).collect { new PodAnnotation(it.key as String, it.value as String) }
    }

    static PodTemplate fromState(Map m) {
        def t = new PodTemplate()
        t.applyState(m)
        return t
    }
}
