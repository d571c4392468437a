// agentforge: create or update one Kubernetes pod template. This text is
// fixed; the only thing agentforge puts in it is base64-encoded JSON in the
// string literal below, so no value can become code.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.model.Node
import jenkins.model.Jenkins
import org.csanchez.jenkins.plugins.kubernetes.ContainerTemplate
import org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud
import org.csanchez.jenkins.plugins.kubernetes.PodAnnotation
import org.csanchez.jenkins.plugins.kubernetes.PodTemplate
import org.csanchez.jenkins.plugins.kubernetes.volumes.EmptyDirVolume

def p = new JsonSlurper().parseText(new String('@@PAYLOAD@@'.decodeBase64(), 'UTF-8'))
def warnings = []
def emit = { Map m -> println('AGENTFORGE-RESULT ' + JsonOutput.toJson(m + [warnings: warnings])) }
final String MARK = 'agentforge.io/managed-by'
final String AGENT = 'jnlp'

// agentforge owns the template's emptyDir volumes on the node's disk (the
// ones it creates); other volumes, memory-backed emptyDirs included, are kept.
def owned = { v -> v instanceof EmptyDirVolume && !v.memory }

// What agentforge manages of a template, normalised the same way for the
// live template and for the requested one.
def view = { PodTemplate t ->
    def c = t.containers.find { it.name == AGENT }
    [id: t.id, name: t.name ?: '', label: t.label ?: '', namespace: t.namespace ?: '',
     serviceAccount: t.serviceAccount ?: '', idleMinutes: t.idleMinutes, instanceCap: t.instanceCap,
     nodeUsageMode: t.nodeUsageMode.name(), image: c?.image ?: '', workingDir: c?.workingDir ?: '',
     cpuRequest: c?.resourceRequestCpu ?: '', memoryRequest: c?.resourceRequestMemory ?: '',
     cpuLimit: c?.resourceLimitCpu ?: '', memoryLimit: c?.resourceLimitMemory ?: '',
     privileged: c?.privileged ?: false, emptyDirs: t.volumes.findAll(owned).collect { it.mountPath },
     managed: t.annotations.any { it.key == MARK }]
}

// PodTemplate(String id) and getId() came with Kubernetes plugin 1.27.2;
// without them a template cannot keep its identity: say so and stop.
try {
    PodTemplate.getConstructor(String)
} catch (NoSuchMethodException ignored) {
    emit([status: 'error', reason: 'plugin-too-old'])
    return
}

def j = Jenkins.get()
def cloud = j.clouds.getByName(p.cloud as String)
if (cloud == null) {
    emit([status: 'error', reason: 'no-such-cloud', clouds: j.clouds.collect { it.name }])
    return
}
if (!(cloud instanceof KubernetesCloud)) {
    emit([status: 'error', reason: 'not-kubernetes', kind: cloud.getClass().name])
    return
}
def old = cloud.templates.find { it.name == p.name }
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
    def other = old?.volumes?.find { it.mountPath == path && !owned(it) }
    if (other != null) {
        warnings << ('the template already has a ' + other.getClass().simpleName + ' at ' + path + ', which comes first: the emptyDir asked for there is not mounted')
    }
}

// Apply the request to a template: the agent container and the owned
// emptyDir volumes are replaced; other containers, volumes, annotations and
// settings agentforge does not manage are kept.
def apply = { PodTemplate t ->
    t.name = p.name
    t.label = p.label
    t.namespace = p.namespace
    t.serviceAccount = p.serviceAccount
    // toIntExact throws instead of wrapping a value that is not a Java int.
    t.idleMinutes = Math.toIntExact(p.idleMinutes as long)
    t.instanceCap = Math.toIntExact(p.instanceCap as long)
    t.setNodeUsageMode(Node.Mode.valueOf(p.nodeUsageMode as String))
    def c = new ContainerTemplate(AGENT, p.image as String)
    c.workingDir = '/home/jenkins/agent'
    // The resource setters keep "" as given: unset is null.
    c.resourceRequestCpu = p.cpuRequest ?: null
    c.resourceRequestMemory = p.memoryRequest ?: null
    c.resourceLimitCpu = p.cpuLimit ?: null
    c.resourceLimitMemory = p.memoryLimit ?: null
    c.privileged = p.privileged as boolean
    def others = t.containers.findAll { it.name != AGENT }
    t.containers = [c] + others
    def kept = t.volumes.findAll { !owned(it) }
    t.volumes = kept + (p.emptyDirs ?: []).collect { new EmptyDirVolume(it as String, false) }
    if (!t.annotations.any { it.key == MARK }) {
        t.annotations = t.annotations + [new PodAnnotation(MARK, 'agentforge')]
    }
    return t
}

// The requested state, computed on a scratch template so that a dry run
// changes nothing.
def wanted = view(apply(new PodTemplate(old?.id ?: 'requested')))
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
