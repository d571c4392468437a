// agentforge: remove one Kubernetes pod template that agentforge manages.
// Fixed text; the request is base64-encoded JSON in the string literal below.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import jenkins.model.Jenkins
import org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud
import org.csanchez.jenkins.plugins.kubernetes.PodTemplate

def p = new JsonSlurper().parseText(new String('@@PAYLOAD@@'.decodeBase64(), 'UTF-8'))
def emit = { Map m -> println('AGENTFORGE-RESULT ' + JsonOutput.toJson(m)) }
final String MARK = 'agentforge.io/managed-by'

// @@CLOUD@@: the plugin check and the cloud (cloud.groovy)

// The lookup and the removal under the one lock (cloud.groovy).
withTemplate { cloud, t ->
    if (t == null) {
        emit([status: 'unchanged'])
        return
    }
    if (!t.annotations.any { it.key == MARK } && !p.adopt) {
        emit([status: 'error', reason: 'not-managed', id: t.id])
        return
    }
    if (p.dryRun) {
        emit([status: 'would-remove', id: t.id])
        return
    }
    def list = new ArrayList(cloud.templates)
    list.remove(t)
    cloud.templates = list
    Jenkins.get().save()
    emit([status: 'removed', id: t.id])
}
