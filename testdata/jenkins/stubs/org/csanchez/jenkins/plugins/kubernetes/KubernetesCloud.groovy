package org.csanchez.jenkins.plugins.kubernetes

import hudson.slaves.Cloud

// Stub of KubernetesCloud (kubernetes-plugin): the template list and the
// methods that change it, with the real semantics (setTemplates copies,
// replaceTemplate moves the template to the end).
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
