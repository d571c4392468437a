package org.csanchez.jenkins.plugins.kubernetes

// Stub of ContainerLivenessProbe (kubernetes-plugin): jenkinsci/kubernetes-plugin
// commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/ContainerLivenessProbe.java:
// @DataBoundConstructor ContainerLivenessProbe(String execArgs, int
// timeoutSeconds, int initialDelaySeconds, int failureThreshold, int
// periodSeconds, int successThreshold) (L26-40); JCasC symbol
// containerLivenessProbe (L102). Here so tests can hold a probe an admin
// added to the jnlp container.
class ContainerLivenessProbe {
    String execArgs
    int timeoutSeconds
    int initialDelaySeconds
    int failureThreshold
    int periodSeconds
    int successThreshold

    ContainerLivenessProbe(String execArgs, int timeoutSeconds, int initialDelaySeconds, int failureThreshold,
                           int periodSeconds, int successThreshold) {
        this.execArgs = execArgs
        this.timeoutSeconds = timeoutSeconds
        this.initialDelaySeconds = initialDelaySeconds
        this.failureThreshold = failureThreshold
        this.periodSeconds = periodSeconds
        this.successThreshold = successThreshold
    }

    // Test-only: the emulator's state file.
    Map toState() {
        [execArgs: execArgs, timeoutSeconds: timeoutSeconds, initialDelaySeconds: initialDelaySeconds,
         failureThreshold: failureThreshold, periodSeconds: periodSeconds, successThreshold: successThreshold]
    }

    static ContainerLivenessProbe fromState(Map m) {
        m == null ? null : new ContainerLivenessProbe(m.execArgs as String, (m.timeoutSeconds ?: 0) as int,
                (m.initialDelaySeconds ?: 0) as int, (m.failureThreshold ?: 0) as int, (m.periodSeconds ?: 0) as int,
                (m.successThreshold ?: 0) as int)
    }
}
