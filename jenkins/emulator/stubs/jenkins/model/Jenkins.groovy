package jenkins.model

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import hudson.PluginManager
import hudson.slaves.Cloud

// Stub of jenkins.model.Jenkins for running agentforge's scripts under
// Groovy 2.4 in tests. State (clouds and their templates) lives in the JSON
// file named by $AGENTFORGE_JENKINS_STATE and is loaded on first use; save()
// writes it back and counts the saves, so tests can tell a no-op from a change.
class Jenkins {
    private static Jenkins instance
    private final File stateFile
    private final CloudList clouds = new CloudList()
    private int saves
    // jenkinsci/jenkins commit ff9430ee, core/src/main/java/jenkins/model/Jenkins.java
    // L636 (public final transient PluginManager pluginManager) and
    // getPluginManager L1331.
    public final PluginManager pluginManager = new PluginManager()

    private Jenkins(File stateFile) {
        this.stateFile = stateFile
        def state = stateFile.exists() ? new JsonSlurper().parse(stateFile) : [:]
        saves = (state.saves ?: 0) as int
        (state.clouds ?: []).each { Map c ->
            clouds.add(c.kind == 'kubernetes' ?
                    Class.forName('org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud').fromState(c) :
                    new ForeignCloud(c.name as String, c.kind as String))
        }
    }

    // Synchronized: the real instance exists before any request comes,
    // so scripts run at once (threads.groovy) must all get the one.
    static synchronized Jenkins get() {
        if (instance == null) {
            instance = new Jenkins(new File(System.getenv('AGENTFORGE_JENKINS_STATE')))
        }
        return instance
    }

    static Jenkins getInstance() { get() }

    static Jenkins getInstanceOrNull() { get() }

    CloudList getClouds() { clouds }

    PluginManager getPluginManager() { pluginManager }

    void save() throws IOException {
        saves++
        def state = [saves: saves, clouds: clouds.collect { it.toState() }]
        stateFile.text = JsonOutput.prettyPrint(JsonOutput.toJson(state))
    }

    // Jenkins.CloudList: a list of clouds with lookup by name.
    static final class CloudList extends ArrayList<Cloud> {
        Cloud getByName(String name) {
            return find { it.name == name }
        }
    }

    // A cloud of another plugin (Docker, EC2, ...), kept as it was.
    static final class ForeignCloud extends Cloud {
        final String kind

        ForeignCloud(String name, String kind) {
            super(name)
            this.kind = kind
        }

        Map toState() { [kind: kind, name: name] }
    }
}
