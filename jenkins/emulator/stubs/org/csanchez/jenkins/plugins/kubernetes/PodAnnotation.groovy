package org.csanchez.jenkins.plugins.kubernetes

// Stub of PodAnnotation (kubernetes-plugin): a key/value pod annotation,
// equal by key only. Line numbers: jenkinsci/kubernetes-plugin commit
// a82d78a0, src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodAnnotation.java.
class PodAnnotation {
    private String key
    private String value

    // L18-22 (@DataBoundConstructor).
    PodAnnotation(String key, String value) {
        this.key = key
        this.value = value
    }

    String getKey() { key }

    void setKey(String v) { key = v }

    String getValue() { value }

    void setValue(String v) { value = v }

    // L40-53.
    @Override
    boolean equals(Object o) {
        if (this.is(o)) {
            return true
        }
        if (o == null || getClass() != o.getClass()) {
            return false
        }
        return Objects.equals(key, ((PodAnnotation) o).key)
    }

    @Override
    int hashCode() { key != null ? key.hashCode() : 0 }
}
