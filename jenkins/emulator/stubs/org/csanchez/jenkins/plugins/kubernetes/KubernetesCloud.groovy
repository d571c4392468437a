package org.csanchez.jenkins.plugins.kubernetes

import hudson.Util
import hudson.slaves.Cloud

// Stub of KubernetesCloud (kubernetes-plugin): the template list and the
// methods that change it, with the real semantics. Line numbers:
// jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/KubernetesCloud.java:
// getTemplates L271-273 (the live list), setTemplates L285-287 (a copy),
// replaceTemplate L822-826 (remove, then add: the template moves to the
// end), getTemplate(String id) L850-852, addTemplate L896-900,
// removeTemplate L908-911 (PodTemplate has no equals: by identity). The
// connection settings a configuration-as-code file sets: setServerUrl
// L293-297 and setNamespace L332-335 (fixEmpty), setSkipTlsVerify L313-317,
// setWebSocket L454-457, setJenkinsUrl L468-471 (fixEmptyAndTrim),
// setJenkinsTunnel L477-480 and setCredentialsId L486-489 (fixEmpty),
// setContainerCapStr L495-498 and setContainerCap L500-502 (0 or less:
// no limit).
class KubernetesCloud extends Cloud {
    static final String JNLP_NAME = 'jnlp'
    private List<PodTemplate> templates = []
    // Properties: Groovy writes the getters, and the setters not below
    // (skipTlsVerify and webSocket are stored as given).
    String serverUrl
    String namespace
    boolean skipTlsVerify
    boolean webSocket
    String jenkinsUrl
    String jenkinsTunnel
    String credentialsId
    private Integer containerCap

    KubernetesCloud(String name) {
        super(name)
    }

    List<PodTemplate> getTemplates() { templates }

    void setTemplates(List<PodTemplate> v) { templates = new ArrayList<PodTemplate>(v) }

    void addTemplate(PodTemplate t) { templates.add(t) }

    void removeTemplate(PodTemplate t) { templates.remove(t) }

    void replaceTemplate(PodTemplate oldTemplate, PodTemplate newTemplate) {
        removeTemplate(oldTemplate)
        addTemplate(newTemplate)
    }

    PodTemplate getTemplate(String id) { templates.find { it.id == id } }

    void setServerUrl(String v) { serverUrl = Util.fixEmpty(v) }

    void setNamespace(String v) { namespace = Util.fixEmpty(v) }

    void setJenkinsUrl(String v) { jenkinsUrl = Util.fixEmptyAndTrim(v) }

    void setJenkinsTunnel(String v) { jenkinsTunnel = Util.fixEmpty(v) }

    void setCredentialsId(String v) { credentialsId = Util.fixEmpty(v) }

    int getContainerCap() { containerCap != null ? containerCap : Integer.MAX_VALUE }

    void setContainerCapStr(String v) { setContainerCap(v == '' ? null : Integer.parseInt(v)) }

    void setContainerCap(Integer v) { containerCap = v != null && v > 0 ? v : null }

    Map toState() {
        [kind: 'kubernetes', name: name, templates: templates.collect { it.toState() },
         settings: [serverUrl: serverUrl, namespace: namespace, skipTlsVerify: skipTlsVerify, webSocket: webSocket,
                    jenkinsUrl: jenkinsUrl, jenkinsTunnel: jenkinsTunnel, credentialsId: credentialsId,
                    containerCap: containerCap].findAll { k, v -> v != null && v != false }]
    }

    static KubernetesCloud fromState(Map m) {
        def c = new KubernetesCloud(m.name as String)
        c.templates = (m.templates ?: []).collect { PodTemplate.fromState(it) }
        def s = (m.settings ?: [:]) as Map
        c.serverUrl = s.serverUrl
        c.namespace = s.namespace
        c.skipTlsVerify = s.skipTlsVerify as boolean
        c.webSocket = s.webSocket as boolean
        c.jenkinsUrl = s.jenkinsUrl
        c.jenkinsTunnel = s.jenkinsTunnel
        c.credentialsId = s.credentialsId
        c.containerCap = s.containerCap as Integer
        return c
    }
}
