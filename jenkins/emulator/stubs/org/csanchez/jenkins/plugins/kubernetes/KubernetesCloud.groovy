package org.csanchez.jenkins.plugins.kubernetes

import hudson.slaves.Cloud

// Stub of KubernetesCloud (kubernetes-plugin): the template list and the
// methods that change it, with the real semantics. Line numbers:
// jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/KubernetesCloud.java:
// getTemplates L271-273 (the live list), setTemplates L285-287 (a copy),
// replaceTemplate L822-826 (remove, then add: the template moves to the
// end), getTemplate(String id) L850-852, addTemplate L896-900,
// removeTemplate L908-911 (PodTemplate has no equals: by identity).
class KubernetesCloud extends Cloud {
    static final String JNLP_NAME = 'jnlp'
    private List<PodTemplate> templates = []

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

    Map toState() {
        [kind: 'kubernetes', name: name, templates: templates.collect { it.toState() }]
    }

    static KubernetesCloud fromState(Map m) {
        def c = new KubernetesCloud(m.name as String)
        c.templates = (m.templates ?: []).collect { PodTemplate.fromState(it) }
        return c
    }
}
