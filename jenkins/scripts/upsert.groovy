// agentforge: create or update one Kubernetes pod template. This text is
// fixed; the only thing agentforge puts in it is base64-encoded JSON in the
// string literal below, so no value can become code.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.model.Node
import java.nio.charset.StandardCharsets
import java.nio.file.Files
import jenkins.model.Jenkins
import org.csanchez.jenkins.plugins.kubernetes.ContainerTemplate
import org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud
import org.csanchez.jenkins.plugins.kubernetes.PodAnnotation
import org.csanchez.jenkins.plugins.kubernetes.PodImagePullSecret
import org.csanchez.jenkins.plugins.kubernetes.PodTemplate
import org.csanchez.jenkins.plugins.kubernetes.model.KeyValueEnvVar
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Merge
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Overrides
import org.csanchez.jenkins.plugins.kubernetes.volumes.EmptyDirVolume

def p = new JsonSlurper().parseText(new String('@@PAYLOAD@@'.decodeBase64(), 'UTF-8'))
def warnings = []
def emit = { Map m -> println('AGENTFORGE-RESULT ' + JsonOutput.toJson(m + [warnings: warnings])) }
final String MARK = 'agentforge.io/managed-by'
final String OWNS = 'agentforge.io/owns'
final String AGENT = 'jnlp'

// @@VIEW@@: the shared template view (view.groovy)
// @@CLOUD@@: the plugin check and the cloud (cloud.groovy)

def j = Jenkins.get()

// Where configuration-as-code's sources declare jenkins.clouds, every
// reload (and restart) rebuilds the clouds from them and a template added
// here disappears: refuse unless asked to go ahead. ConfigurationAsCode.get
// and configs(path) are the plugin's own (a file, or the YAML files under a
// folder); a source that is not a readable path (a URL) may declare them.
def cascSources = { ->
    def cls
    try {
        cls = j.pluginManager.uberClassLoader.loadClass('io.jenkins.plugins.casc.ConfigurationAsCode')
    } catch (ClassNotFoundException ignored) {
        return []
    }
    def casc = cls.getMethod('get').invoke(null)
    return casc.sources.collectMany { src ->
        try {
            // Any clouds key: block style, flow style ({clouds: [...]})
            // or JSON ("clouds": [...]), which YAML also is. A comment
            // that looks like one counts too: refusing is the safe side.
            return casc.configs(src).findAll { path ->
                new String(Files.readAllBytes(path), StandardCharsets.UTF_8) =~ /\bclouds["']?\s*:/
            }.collect { it.toString() }
        } catch (Exception ignored) {
            return [src]
        }
    }
}
def managing = cascSources()
if (managing && !p.scriptConsole) {
    emit([status: 'error', reason: 'casc-managed', sources: managing])
    return
}
if (managing) {
    warnings << ('configuration-as-code manages the clouds (' + managing.join(', ') + '): its next reload or restart removes this template')
}

// The lookup, the decision and the write under the one lock (cloud.groovy).
withTemplate { cloud, old ->
    if (old != null && !view(old).managed && !p.adopt) {
        emit([status: 'error', reason: 'not-managed', id: old.id])
        return
    }
    def clash = cloud.templates.find { it.label == p.label && it.name != p.name }
    if (clash != null && cloud.templates.indexOf(clash) < (old == null ? cloud.templates.size() : cloud.templates.indexOf(old))) {
        warnings << ('template ' + clash.name + ' comes first with the same label and wins: jobs asking for this label get it instead')
    }
    // The plugin mounts the first volume of a mount path and skips the others.
    (p.emptyDirs ?: []).each { path ->
        def other = old?.volumes?.find { it.mountPath == path && !ownedVolume(it) }
        if (other != null) {
            warnings << ('the template already has a ' + other.getClass().simpleName + ' at ' + path + ', which comes first: the emptyDir asked for there is not mounted')
        }
    }

    // The optional fields asked for, and the OWNS annotation they make.
    def reqEnv = (p.env ?: [:]) as Map
    def reqSecrets = (p.imagePullSecrets ?: []) as List
    def reqSelector = (p.nodeSelector ?: [:]) as Map
    def reqScalars = [yaml: p.yaml ?: null, yamlMergeStrategy: p.yamlMergeStrategy ?: null, inheritFrom: p.inheritFrom ?: null,
                      runAsUser: p.runAsUser?.toString(), runAsGroup: p.runAsGroup?.toString()]
    def owns = (reqEnv.keySet().collect { 'env:' + it } + reqSecrets.collect { 'imagePullSecret:' + it } +
            reqSelector.keySet().collect { 'nodeSelector:' + it } + reqScalars.findAll { it.value != null }.collect { it.key }).sort()
    if (reqScalars.yaml != null && old != null && old.yaml != null && !('yaml' in ownsOf(old)) && old.yaml != reqScalars.yaml) {
        warnings << 'the template had raw YAML that agentforge did not write; it is replaced'
    }

    // items with the wanted ones in place: an item whose key is wanted is
    // replaced where it stands, one agentforge owned before and no longer
    // wants is dropped, any other stays; wanted keys not there yet are added
    // at the end, in key order.
    def keyed = { List items, Closure keyOf, Map wanted, Collection dropped ->
        def out = []
        def placed = [] as Set
        items.each { item ->
            def k = keyOf(item)
            if (wanted.containsKey(k)) {
                if (placed.add(k)) {
                    out << wanted[k]
                }
            } else if (!(k in dropped)) {
                out << item
            }
        }
        wanted.keySet().sort().each { k ->
            if (!placed.contains(k)) {
                out << wanted[k]
            }
        }
        return out
    }

    // Apply the request to a template, field by field: the jnlp container is
    // a copy of the one there (ContainerTemplate's copy constructor: probes,
    // ports, shell, environment and every other field stay) with agentforge's
    // fields set, in the same place; other containers, volumes, annotations
    // and settings agentforge does not own are kept.
    def apply = { PodTemplate t ->
        def prior = ownsOf(t)
        t.name = p.name
        t.label = p.label
        t.namespace = p.namespace
        t.serviceAccount = p.serviceAccount
        // toIntExact throws instead of wrapping a value that is not a Java int.
        t.idleMinutes = Math.toIntExact(p.idleMinutes as long)
        t.instanceCap = Math.toIntExact(p.instanceCap as long)
        t.setNodeUsageMode(Node.Mode.valueOf(p.nodeUsageMode as String))

        def containers = new ArrayList<ContainerTemplate>(t.containers)
        int at = containers.findIndexOf { it.name == AGENT }
        def c = at >= 0 ? new ContainerTemplate(containers[at]) : new ContainerTemplate(AGENT, p.image as String)
        c.image = p.image as String
        c.workingDir = '/home/jenkins/agent'
        // The resource setters keep "" as given: unset is null.
        c.resourceRequestCpu = p.cpuRequest ?: null
        c.resourceRequestMemory = p.memoryRequest ?: null
        c.resourceLimitCpu = p.cpuLimit ?: null
        c.resourceLimitMemory = p.memoryLimit ?: null
        c.privileged = p.privileged as boolean
        def envBefore = ownedKeys(prior, 'env:')
        if (reqEnv || envBefore) {
            def env = keyed(c.envVars, { it.key }, reqEnv.collectEntries { k, v -> [(k): new KeyValueEnvVar(k as String, v as String)] }, envBefore)
            // setEnvVars adds to the list (ContainerTemplate.java L219-222): set
            // the copy's own list, which getEnvVars returns live.
            c.envVars.clear()
            c.envVars.addAll(env)
        }
        if (at >= 0) {
            containers.set(at, c)
        } else {
            containers.add(0, c)
        }
        t.containers = containers

        def kept = t.volumes.findAll { !ownedVolume(it) }
        t.volumes = kept + (p.emptyDirs ?: []).collect { new EmptyDirVolume(it as String, false) }

        def secretsBefore = ownedKeys(prior, 'imagePullSecret:')
        if (reqSecrets || secretsBefore) {
            t.imagePullSecrets = keyed(t.imagePullSecrets, { it.name }, reqSecrets.collectEntries { [(it): new PodImagePullSecret(it as String)] }, secretsBefore)
        }
        def selectorBefore = ownedKeys(prior, 'nodeSelector:')
        if (reqSelector || selectorBefore) {
            t.nodeSelector = keyed(selectorParts(t.nodeSelector), selectorKey, reqSelector.collectEntries { k, v -> [(k): k + '=' + v] }, selectorBefore).join(',')
        }
        ['yaml', 'inheritFrom', 'runAsUser', 'runAsGroup'].each { f ->
            if (reqScalars[f] != null) {
                t."$f" = reqScalars[f]
            } else if (f in prior) {
                t."$f" = null
            }
        }
        if (reqScalars.yamlMergeStrategy != null) {
            t.yamlMergeStrategy = reqScalars.yamlMergeStrategy == 'merge' ? new Merge() : new Overrides()
        } else if ('yamlMergeStrategy' in prior) {
            t.yamlMergeStrategy = null
        }

        def annotations = t.annotations.findAll { it.key != OWNS }
        if (!annotations.any { it.key == MARK }) {
            annotations << new PodAnnotation(MARK, 'agentforge')
        }
        if (owns) {
            def at2 = t.annotations.findIndexOf { it.key == OWNS }
            def a = new PodAnnotation(OWNS, JsonOutput.toJson(owns))
            if (at2 >= 0 && at2 <= annotations.size()) {
                annotations.add(at2, a)
            } else {
                annotations << a
            }
        }
        t.annotations = annotations
        return t
    }

    // The requested state, computed on a copy of the template (or a new one)
    // so that a dry run changes nothing.
    def wanted = view(apply(old != null ? new PodTemplate(old) : new PodTemplate('requested')))
    def before = old == null ? null : view(old)
    def same = before != null && before.findAll { it.key != 'id' } == wanted.findAll { it.key != 'id' }
    if (p.dryRun || same) {
        emit([status: same ? 'unchanged' : (old == null ? 'would-create' : 'would-update'), before: before, after: same ? before : wanted])
        return
    }
    def t
    if (old == null) {
        t = apply(new PodTemplate())
        def list = new ArrayList<PodTemplate>(cloud.templates)
        list.add(t)
        cloud.templates = list
    } else {
        t = apply(old) // in place: same object, same id, same position
    }
    j.save()
    emit([status: old == null ? 'created' : 'updated', before: before, after: view(t)])
}
