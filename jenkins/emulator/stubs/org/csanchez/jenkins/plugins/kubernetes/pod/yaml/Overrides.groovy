package org.csanchez.jenkins.plugins.kubernetes.pod.yaml

// Stub of Overrides (kubernetes-plugin): jenkinsci/kubernetes-plugin commit
// a82d78a0, src/main/java/org/csanchez/jenkins/plugins/kubernetes/pod/yaml/Overrides.java:
// @DataBoundConstructor Overrides() (L16-17), toString "Override"
// (L28-31), JCasC symbol override (L34).
class Overrides extends YamlMergeStrategy {
    @Override
    String toString() { 'Override' }

    @Override
    String getSymbol() { 'override' }
}
