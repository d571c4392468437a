// agentforge: the view of a pod template that upsert.groovy and read.groovy
// share (spliced into both where they say @@VIEW@@), so that the read-back
// compares like with like.
// It uses p, emit, MARK, OWNS and AGENT, defined by the script around it.

// agentforge owns the template's emptyDir volumes on the node's disk (the
// ones it creates); other volumes, memory-backed emptyDirs included, are kept.
def ownedVolume = { v -> v instanceof EmptyDirVolume && !v.memory }

// The optional fields agentforge set, as recorded in the OWNS annotation:
// env:KEY, imagePullSecret:NAME, nodeSelector:KEY, yaml, yamlMergeStrategy,
// inheritFrom, runAsUser, runAsGroup. A run removes what it set before and
// is no longer asked for, and nothing else.
def ownsOf = { PodTemplate t ->
    def a = t.annotations.find { it.key == OWNS }
    try {
        def v = a == null ? [] : new JsonSlurper().parseText(a.value ?: '[]')
        return v instanceof List ? v.collect { it as String } : []
    } catch (Exception ignored) {
        return []
    }
}
def ownedKeys = { List owns, String prefix -> owns.findAll { it.startsWith(prefix) }.collect { it.substring(prefix.length()) } }
// A node selector is one string, "key=value,key=value" (PodTemplate.setNodeSelector).
def selectorParts = { String s -> s == null ? [] : s.split(',').findAll { !it.isEmpty() } as List }
def selectorKey = { String part -> part.split('=', 2)[0] }
def strategySymbol = { s -> s == null ? '' : s instanceof Merge ? 'merge' : s instanceof Overrides ? 'override' : s.toString() }

// What agentforge manages of a template, normalised the same way for the
// live template and for the requested one: the optional fields only as
// far as agentforge owns them.
def view = { PodTemplate t ->
    def c = t.containers.find { it.name == AGENT }
    def owns = ownsOf(t)
    def env = ownedKeys(owns, 'env:')
    def secrets = ownedKeys(owns, 'imagePullSecret:')
    def selectors = ownedKeys(owns, 'nodeSelector:')
    [cloud: p.cloud, id: t.id, name: t.name ?: '', label: t.label ?: '', namespace: t.namespace ?: '',
     serviceAccount: t.serviceAccount ?: '', idleMinutes: t.idleMinutes, instanceCap: t.instanceCap,
     nodeUsageMode: t.nodeUsageMode.name(), image: c?.image ?: '', workingDir: c?.workingDir ?: '',
     cpuRequest: c?.resourceRequestCpu ?: '', memoryRequest: c?.resourceRequestMemory ?: '',
     cpuLimit: c?.resourceLimitCpu ?: '', memoryLimit: c?.resourceLimitMemory ?: '',
     privileged: c?.privileged ?: false, emptyDirs: t.volumes.findAll(ownedVolume).collect { it.mountPath },
     env: (c?.envVars ?: []).findAll { it instanceof KeyValueEnvVar && it.key in env }.collectEntries { [(it.key): it.value ?: ''] },
     imagePullSecrets: t.imagePullSecrets.collect { it.name }.findAll { it in secrets }.sort(),
     nodeSelector: selectorParts(t.nodeSelector).findAll { selectorKey(it) in selectors }.collectEntries { def kv = it.split('=', 2); [(kv[0]): kv.length > 1 ? kv[1] : ''] },
     yaml: 'yaml' in owns ? (t.yaml ?: '') : '', yamlMergeStrategy: 'yamlMergeStrategy' in owns ? strategySymbol(t.yamlMergeStrategy) : '',
     inheritFrom: 'inheritFrom' in owns ? (t.inheritFrom ?: '') : '',
     runAsUser: 'runAsUser' in owns && t.runAsUser != null ? t.runAsUser as Long : null,
     runAsGroup: 'runAsGroup' in owns && t.runAsGroup != null ? t.runAsGroup as Long : null,
     managed: t.annotations.any { it.key == MARK }]
}
