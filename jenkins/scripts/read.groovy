// agentforge: read one Kubernetes pod template back. Fixed text; the request
// is base64-encoded JSON in the string literal below. The view is the
// upsert script's, so that the read-back compares like with like.
import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import jenkins.model.Jenkins
import org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud
import org.csanchez.jenkins.plugins.kubernetes.PodTemplate
import org.csanchez.jenkins.plugins.kubernetes.model.KeyValueEnvVar
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Merge
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Overrides
import org.csanchez.jenkins.plugins.kubernetes.volumes.EmptyDirVolume

def p = new JsonSlurper().parseText(new String('@@PAYLOAD@@'.decodeBase64(), 'UTF-8'))
def emit = { Map m -> println('AGENTFORGE-RESULT ' + JsonOutput.toJson(m)) }
final String MARK = 'agentforge.io/managed-by'
final String OWNS = 'agentforge.io/owns'
final String AGENT = 'jnlp'

// @@VIEW@@: the shared template view (view.groovy)

// @@CLOUD@@: the plugin check and the cloud (cloud.groovy)

// Under the one lock (cloud.groovy): never a template half-written.
withTemplate { cloud, t ->
    if (t == null) {
        emit([status: 'absent', position: -1])
        return
    }
    emit([status: 'present', position: cloud.templates.indexOf(t), after: view(t)])
}
