package org.csanchez.jenkins.plugins.kubernetes

import hudson.Util

// Stub of PodTemplateUtils (kubernetes-plugin), the helper the run-as
// setters use: jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/PodTemplateUtils.java
// L855-866: trimmed, then Long.parseLong; anything that does not parse
// (or is empty) becomes null, silently.
class PodTemplateUtils {
    static Long parseLong(String value) {
        String s = Util.fixEmptyAndTrim(value)
        if (s == null) {
            return null
        }
        try {
            return Long.parseLong(s)
        } catch (NumberFormatException ignored) {
            return null
        }
    }
}
