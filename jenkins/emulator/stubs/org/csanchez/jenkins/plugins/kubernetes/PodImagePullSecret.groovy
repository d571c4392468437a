package org.csanchez.jenkins.plugins.kubernetes

import groovy.transform.EqualsAndHashCode

// Stub of PodImagePullSecret (kubernetes-plugin): the name of a Secret of
// type kubernetes.io/dockerconfigjson in the agent pods' namespace.
// jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodImagePullSecret.java:
// @DataBoundConstructor PodImagePullSecret(String name) stores it as given
// (L17-20; the setter too, here a Groovy property), equal by name (L34-42).
// No @Symbol: JCasC writes a plain mapping {name: ...}.
@EqualsAndHashCode(includes = 'name')
class PodImagePullSecret {
    String name

    PodImagePullSecret(String name) {
        this.name = name
    }
}
