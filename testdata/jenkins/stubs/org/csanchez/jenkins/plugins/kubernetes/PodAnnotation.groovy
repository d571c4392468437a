package org.csanchez.jenkins.plugins.kubernetes

// Stub of PodAnnotation (kubernetes-plugin): a key/value pod annotation.
class PodAnnotation {
    private final String key
    private final String value

    PodAnnotation(String key, String value) {
        this.key = key
        this.value = value
    }

    String getKey() { key }

    String getValue() { value }
}
