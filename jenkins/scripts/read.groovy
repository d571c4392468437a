// agentforge: read one Kubernetes pod template back. Fixed text; the request
// is base64-encoded JSON in the string literal below.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import jenkins.model.Jenkins
import org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud
import org.csanchez.jenkins.plugins.kubernetes.PodTemplate
import org.csanchez.jenkins.plugins.kubernetes.volumes.EmptyDirVolume

def p = new JsonSlurper().parseText(new String('@@PAYLOAD@@'.decodeBase64(), 'UTF-8'))
def emit = { Map m -> println('AGENTFORGE-RESULT ' + JsonOutput.toJson(m)) }
final String MARK = 'agentforge.io/managed-by'
final String AGENT = 'jnlp'

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
if (!(cloud instanceof KubernetesCloud)) {
    emit([status: 'error', reason: cloud == null ? 'no-such-cloud' : 'not-kubernetes', clouds: j.clouds.collect { it.name }])
    return
}
def t = cloud.templates.find { it.name == p.name }
if (t == null) {
    emit([status: 'absent', position: -1])
    return
}
def c = t.containers.find { it.name == AGENT }
emit([status: 'present', position: cloud.templates.indexOf(t), after: [
    id: t.id, name: t.name ?: '', label: t.label ?: '', namespace: t.namespace ?: '',
    serviceAccount: t.serviceAccount ?: '', idleMinutes: t.idleMinutes, instanceCap: t.instanceCap,
    nodeUsageMode: t.nodeUsageMode.name(), image: c?.image ?: '', workingDir: c?.workingDir ?: '',
    cpuRequest: c?.resourceRequestCpu ?: '', memoryRequest: c?.resourceRequestMemory ?: '',
    cpuLimit: c?.resourceLimitCpu ?: '', memoryLimit: c?.resourceLimitMemory ?: '',
    privileged: c?.privileged ?: false,
    emptyDirs: t.volumes.findAll { it instanceof EmptyDirVolume && !it.memory }.collect { it.mountPath },
    managed: t.annotations.any { it.key == MARK }]])
