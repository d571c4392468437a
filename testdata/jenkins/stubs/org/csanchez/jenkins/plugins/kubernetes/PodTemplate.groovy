package org.csanchez.jenkins.plugins.kubernetes

import hudson.model.Node

// Stub of PodTemplate (kubernetes-plugin). Like the real class: an empty id
// becomes a random UUID, the node usage mode defaults to EXCLUSIVE (stored as
// null), a negative instance cap means unlimited (Integer.MAX_VALUE), and
// there is no equals (identity only).
class PodTemplate {
    private final String id
    private String name
    private String label
    private String namespace
    private String serviceAccount
    private int idleMinutes
    private int instanceCap = Integer.MAX_VALUE
    private Node.Mode nodeUsageMode
    private List<ContainerTemplate> containers = []
    private List<PodAnnotation> annotations = []

    PodTemplate() {
        this(null)
    }

    PodTemplate(String id) {
        this.id = (id == null || id.isEmpty()) ? UUID.randomUUID().toString() : id
    }

    String getId() { id }
    String getName() { name }
    void setName(String v) { name = v }
    String getLabel() { label }
    void setLabel(String v) { label = v }
    String getNamespace() { namespace }
    void setNamespace(String v) { namespace = v }
    String getServiceAccount() { serviceAccount }
    void setServiceAccount(String v) { serviceAccount = v }
    int getIdleMinutes() { idleMinutes }
    void setIdleMinutes(int v) { idleMinutes = v }
    int getInstanceCap() { instanceCap }

    void setInstanceCap(int v) {
        instanceCap = v < 0 ? Integer.MAX_VALUE : v
    }

    Node.Mode getNodeUsageMode() { nodeUsageMode == null ? Node.Mode.EXCLUSIVE : nodeUsageMode }

    void setNodeUsageMode(Node.Mode mode) {
        nodeUsageMode = mode == Node.Mode.EXCLUSIVE ? null : mode
    }

    void setNodeUsageMode(String mode) {
        setNodeUsageMode(Node.Mode.valueOf(mode))
    }

    List<ContainerTemplate> getContainers() { containers }
    void setContainers(List<ContainerTemplate> v) { containers = new ArrayList<ContainerTemplate>(v) }
    List<PodAnnotation> getAnnotations() { annotations }
    void setAnnotations(List<PodAnnotation> v) { annotations = new ArrayList<PodAnnotation>(v) }

    Map toState() {
        [id: id, name: name, label: label, namespace: namespace, serviceAccount: serviceAccount,
         idleMinutes: idleMinutes, instanceCap: instanceCap, nodeUsageMode: nodeUsageMode?.name(),
         containers: containers.collect { it.toState() },
         annotations: annotations.collect { [key: it.key, value: it.value] }]
    }

    static PodTemplate fromState(Map m) {
        def t = new PodTemplate(m.id as String)
        t.name = m.name
        t.label = m.label
        t.namespace = m.namespace
        t.serviceAccount = m.serviceAccount
        t.idleMinutes = m.idleMinutes as int
        t.instanceCap = m.instanceCap as int
        if (m.nodeUsageMode) {
            t.setNodeUsageMode(m.nodeUsageMode as String)
        }
        t.containers = (m.containers ?: []).collect { ContainerTemplate.fromState(it) }
        t.annotations = (m.annotations ?: []).collect { new PodAnnotation(it.key as String, it.value as String) }
        return t
    }
}
