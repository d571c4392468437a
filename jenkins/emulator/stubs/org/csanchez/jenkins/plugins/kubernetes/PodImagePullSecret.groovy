package org.csanchez.jenkins.plugins.kubernetes

// Stub of PodImagePullSecret (kubernetes-plugin): the name of a Secret of
// type kubernetes.io/dockerconfigjson in the agent pods' namespace.
// jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodImagePullSecret.java:
// @DataBoundConstructor PodImagePullSecret(String name) stores it as given
// (L17-20), equal by name (L34-42). No @Symbol: JCasC writes a plain
// mapping {name: ...}.
class PodImagePullSecret {
    private String name

    PodImagePullSecret(String name) {
        this.name = name
    }

    String getName() { name }

    void setName(String v) { name = v }

    @Override
    boolean equals(Object o) {
        if (this.is(o)) {
            return true
        }
        if (o == null || getClass() != o.getClass()) {
            return false
        }
        return Objects.equals(name, ((PodImagePullSecret) o).name)
    }

    @Override
    int hashCode() { name != null ? name.hashCode() : 0 }
}
