package org.csanchez.jenkins.plugins.kubernetes.model

// Stub of KeyValueEnvVar (kubernetes-plugin): jenkinsci/kubernetes-plugin
// commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/model/KeyValueEnvVar.java:
// @DataBoundConstructor KeyValueEnvVar(String key, String value) stores
// both as given (L43-47); equal by key and value (L67-86); JCasC symbol
// envVar (L88).
class KeyValueEnvVar extends TemplateEnvVar {
    private String value

    KeyValueEnvVar(String key, String value) {
        super(key)
        this.value = value
    }

    String getValue() { value }

    void setValue(String v) { value = v }

    @Override
    boolean equals(Object o) {
        return super.equals(o) && o instanceof KeyValueEnvVar && Objects.equals(value, ((KeyValueEnvVar) o).value)
    }

    @Override
    int hashCode() { 31 * super.hashCode() + (value == null ? 0 : value.hashCode()) }

    @Override
    Map toState() { [kind: 'envVar', key: key, value: value] }
}
