package org.csanchez.jenkins.plugins.kubernetes.model

// Stub of TemplateEnvVar (kubernetes-plugin), the base of a template's or a
// container's environment variables: jenkinsci/kubernetes-plugin commit
// a82d78a0, src/main/java/org/csanchez/jenkins/plugins/kubernetes/model/TemplateEnvVar.java:
// the key (L40-48), equal by key and class family (L69-79).
abstract class TemplateEnvVar {
    private String key

    TemplateEnvVar(String key) {
        this.key = key
    }

    String getKey() { key }

    void setKey(String v) { key = v }

    @Override
    boolean equals(Object o) {
        if (this.is(o)) {
            return true
        }
        if (!(o instanceof TemplateEnvVar)) {
            return false
        }
        return Objects.equals(key, ((TemplateEnvVar) o).key)
    }

    @Override
    int hashCode() { 31 + (key == null ? 0 : key.hashCode()) }

    // Test-only: the emulator's state file.
    abstract Map toState()

    static TemplateEnvVar fromState(Map m) {
        switch (m.kind) {
            case 'envVar':
                return new KeyValueEnvVar(m.key as String, m.value as String)
            case 'secretEnvVar':
                return new SecretEnvVar(m.key as String, m.secretName as String, m.secretKey as String, m.optional as Boolean)
            default:
                throw new IllegalArgumentException('env var kind ' + m.kind)
        }
    }
}
