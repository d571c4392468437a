package org.csanchez.jenkins.plugins.kubernetes

import hudson.Util
import hudson.model.Node
import org.csanchez.jenkins.plugins.kubernetes.model.TemplateEnvVar
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.YamlMergeStrategy
import org.csanchez.jenkins.plugins.kubernetes.volumes.PodVolume

// Stub of PodTemplate (kubernetes-plugin), doing what the real setters do.
// Line numbers: jenkinsci/kubernetes-plugin commit a82d78a0
// (4423.vb_59f230b_ce53-2-ga82d78a0, 2026-03-25),
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodTemplate.java.
// The constructor PodTemplate(String id) exists since 1.27.2 (see
// stubs-kubernetes-1.27.1 for the older class).
class PodTemplate {
    private String id
    // Properties: Groovy writes the getters, and the setters not below
    // (idleMinutes, L426-429, and yamlMergeStrategy, L212-225, are stored
    // as given).
    String name
    String label
    String namespace
    String serviceAccount
    int idleMinutes
    // L136: unlimited by default.
    int instanceCap = Integer.MAX_VALUE
    private Node.Mode nodeUsageMode
    // L177, L179: the lists are never replaced by setVolumes and
    // setContainers (see below).
    private final List<PodVolume> volumes = []
    private final List<ContainerTemplate> containers = []
    private List<PodAnnotation> annotations = []
    // L110, L157, L120-122, L181, L185, L198, L227.
    String inheritFrom
    String nodeSelector
    private Long runAsUser
    private Long runAsGroup
    private List<TemplateEnvVar> envVars = []
    private List<PodImagePullSecret> imagePullSecrets = []
    String yaml
    // Null by default (Overrides then applies, getResolvedYamlMergeStrategy
    // L217-220).
    YamlMergeStrategy yamlMergeStrategy

    // L247-249.
    PodTemplate() {
        this((String) null)
    }

    // L251-259 (@DataBoundConstructor): an empty id becomes a random UUID.
    PodTemplate(String id) {
        this.id = Util.fixEmpty(id) == null ? UUID.randomUUID().toString() : id
    }

    // L261-267: a deep copy (the plugin round-trips through XStream). With
    // this constructor next to PodTemplate(String), Groovy cannot choose for
    // new PodTemplate(null): "Ambiguous method overloading".
    PodTemplate(PodTemplate from) {
        applyState(from.toState())
    }

    String getId() { id }

    // L304-307.
    void setName(String v) { name = Util.fixEmptyAndTrim(v) }

    // L486-490 (also recomputes the label set and the pod labels).
    void setLabel(String v) { label = Util.fixEmptyAndTrim(v) }

    // L317-320.
    void setNamespace(String v) { namespace = Util.fixEmptyAndTrim(v) }

    // L597-600: fixEmpty, no trim.
    void setServiceAccount(String v) { serviceAccount = Util.fixEmpty(v) }

    // L365-372: a negative cap means unlimited.
    void setInstanceCap(int v) {
        instanceCap = v < 0 ? Integer.MAX_VALUE : v
    }

    // L530-532.
    Node.Mode getNodeUsageMode() { nodeUsageMode == null ? Node.Mode.EXCLUSIVE : nodeUsageMode }

    // L520-523: EXCLUSIVE, the default, is stored as null.
    void setNodeUsageMode(Node.Mode mode) {
        nodeUsageMode = mode == Node.Mode.EXCLUSIVE ? null : mode
    }

    // L525-528.
    void setNodeUsageMode(String mode) {
        setNodeUsageMode(Node.Mode.valueOf(mode))
    }

    // L828-834: the live list.
    List<PodVolume> getVolumes() { volumes }

    // L820-826: clears the live list and adds the items.
    void setVolumes(List<PodVolume> items) {
        synchronized (volumes) {
            volumes.clear()
            volumes.addAll(items)
        }
    }

    // L854-860: the live list.
    List<ContainerTemplate> getContainers() { containers }

    // L846-852: clears the live list and adds the items, so a list obtained
    // from getContainers() earlier changes too.
    void setContainers(List<ContainerTemplate> items) {
        synchronized (containers) {
            containers.clear()
            containers.addAll(items)
        }
    }

    // L725-730.
    List<PodAnnotation> getAnnotations() { annotations == null ? Collections.emptyList() : annotations }

    // L736-742: null is ignored; otherwise a new list.
    void setAnnotations(List<PodAnnotation> v) {
        if (v != null) {
            annotations = new ArrayList<PodAnnotation>()
            annotations.addAll(v)
        }
    }

    // L299-302: names of parent templates, separated by spaces.
    void setInheritFrom(String v) { inheritFrom = Util.fixEmptyAndTrim(v) }

    // L511-514: "key=value,key=value" as one string (PodTemplateBuilder
    // splits it, L644-660: a pair that is not exactly key=value, both
    // non-empty, is skipped with a warning).
    void setNodeSelector(String v) { nodeSelector = Util.fixEmptyAndTrim(v) }

    // L545-566: the pod's securityContext runAsUser/runAsGroup
    // (PodTemplateBuilder L277-292), parsed as a Long: a value that does not
    // parse becomes null, silently (PodTemplateUtils.parseLong).
    String getRunAsUser() { runAsUser == null ? null : runAsUser.toString() }

    void setRunAsUser(String v) { runAsUser = PodTemplateUtils.parseLong(v) }

    String getRunAsGroup() { runAsGroup == null ? null : runAsGroup.toString() }

    void setRunAsGroup(String v) { runAsGroup = PodTemplateUtils.parseLong(v) }

    // L652-657: pod-level environment variables (every container gets them).
    List<TemplateEnvVar> getEnvVars() { envVars == null ? Collections.emptyList() : envVars }

    // L717-723: null is ignored; otherwise clears the live list and adds.
    void setEnvVars(List<TemplateEnvVar> v) {
        if (v != null) {
            envVars.clear()
            envVars.addAll(v)
        }
    }

    // L744-746.
    List<PodImagePullSecret> getImagePullSecrets() { imagePullSecrets == null ? Collections.emptyList() : imagePullSecrets }

    // L752-757: null is ignored; otherwise clears the live list and adds.
    void setImagePullSecrets(List<PodImagePullSecret> v) {
        if (v != null) {
            imagePullSecrets.clear()
            imagePullSecrets.addAll(v)
        }
    }

    // L865-872: the raw pod YAML, merged under the template's own fields
    // (PodTemplateBuilder L298-299, PodTemplateUtils.combine); "" is null.
    void setYaml(String v) { yaml = Util.fixEmpty(v) }

    // Test-only: the emulator's state file.
    Map toState() {
        [id: id, name: name, label: label, namespace: namespace, serviceAccount: serviceAccount,
         idleMinutes: idleMinutes, instanceCap: instanceCap, nodeUsageMode: nodeUsageMode?.name(),
         volumes: volumes.collect { it.toState() },
         containers: containers.collect { it.toState() },
         annotations: annotations.collect { [key: it.key, value: it.value] },
         inheritFrom: inheritFrom, nodeSelector: nodeSelector, runAsUser: getRunAsUser(), runAsGroup: getRunAsGroup(),
         envVars: envVars.collect { it.toState() }, imagePullSecrets: imagePullSecrets.collect { it.name },
         yaml: yaml, yamlMergeStrategy: yamlMergeStrategy?.symbol].findAll { k, v -> v != null }
    }

    // Test-only: fields are set directly, as XStream does when Jenkins loads
    // its configuration (no setter runs).
    private void applyState(Map m) {
        // readResolve (L983-987) gives a template saved without an
        // id one derived from its label and content.
        id = m.id != null ? m.id as String : (m.label as String) + '-' + m.toString().md5()
        name = m.name as String
        label = m.label as String
        namespace = m.namespace as String
        serviceAccount = m.serviceAccount as String
        idleMinutes = (m.idleMinutes ?: 0) as int
        instanceCap = m.containsKey('instanceCap') ? m.instanceCap as int : Integer.MAX_VALUE
        nodeUsageMode = m.nodeUsageMode ? Node.Mode.valueOf(m.nodeUsageMode as String) : null
        volumes.clear()
        volumes.addAll((m.volumes ?: []).collect { PodVolume.fromState(it as Map) })
        containers.clear()
        containers.addAll((m.containers ?: []).collect { ContainerTemplate.fromState(it as Map) })
        annotations = (m.annotations ?: []).collect { new PodAnnotation(it.key as String, it.value as String) }
        inheritFrom = m.inheritFrom as String
        nodeSelector = m.nodeSelector as String
        runAsUser = PodTemplateUtils.parseLong(m.runAsUser as String)
        runAsGroup = PodTemplateUtils.parseLong(m.runAsGroup as String)
        envVars = (m.envVars ?: []).collect { TemplateEnvVar.fromState(it as Map) }
        imagePullSecrets = (m.imagePullSecrets ?: []).collect { new PodImagePullSecret(it as String) }
        yaml = m.yaml as String
        yamlMergeStrategy = m.yamlMergeStrategy ? YamlMergeStrategy.fromSymbol(m.yamlMergeStrategy as String) : null
    }

    static PodTemplate fromState(Map m) {
        def t = new PodTemplate((String) m.id)
        t.applyState(m)
        return t
    }
}
