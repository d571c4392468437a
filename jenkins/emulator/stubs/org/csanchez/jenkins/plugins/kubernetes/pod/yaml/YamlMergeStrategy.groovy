package org.csanchez.jenkins.plugins.kubernetes.pod.yaml

// Stub of YamlMergeStrategy (kubernetes-plugin): how a template's raw YAML
// combines with its parents' (inheritFrom). jenkinsci/kubernetes-plugin
// commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/pod/yaml/YamlMergeStrategy.java:
// the default is Overrides (defaultStrategy, L12-15); PodTemplate stores
// null until one is set (PodTemplate.java L212-225).
abstract class YamlMergeStrategy {
    static YamlMergeStrategy defaultStrategy() { new Overrides() }

    // Test-only: the JCasC symbol, for the emulator's state file.
    abstract String getSymbol()

    static YamlMergeStrategy fromSymbol(String s) {
        switch (s) {
            case 'merge':
                return new Merge()
            case 'override':
                return new Overrides()
            default:
                throw new IllegalArgumentException('yaml merge strategy ' + s)
        }
    }
}
