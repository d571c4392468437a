package org.csanchez.jenkins.plugins.kubernetes.pod.yaml

// Stub of Merge (kubernetes-plugin): jenkinsci/kubernetes-plugin commit
// a82d78a0, src/main/java/org/csanchez/jenkins/plugins/kubernetes/pod/yaml/Merge.java:
// @DataBoundConstructor Merge() (L18-19), toString "Merge" (L26-29), JCasC
// symbol merge (L32).
class Merge extends YamlMergeStrategy {
    @Override
    String toString() { 'Merge' }

    @Override
    String getSymbol() { 'merge' }
}
