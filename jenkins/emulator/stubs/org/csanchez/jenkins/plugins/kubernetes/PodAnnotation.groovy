package org.csanchez.jenkins.plugins.kubernetes

import groovy.transform.EqualsAndHashCode

// Stub of PodAnnotation (kubernetes-plugin): a key/value pod annotation,
// equal by key only. Line numbers: jenkinsci/kubernetes-plugin commit
// a82d78a0, src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodAnnotation.java:
// the @DataBoundConstructor and the setters store the values as given
// (L18-38, here Groovy properties); equals compares the key, and the
// class (L40-53; nothing extends it, so instanceof is the same test).
@EqualsAndHashCode(includes = 'key')
class PodAnnotation {
    String key
    String value

    PodAnnotation(String key, String value) {
        this.key = key
        this.value = value
    }
}
