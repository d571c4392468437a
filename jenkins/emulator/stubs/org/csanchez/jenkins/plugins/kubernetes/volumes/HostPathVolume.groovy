package org.csanchez.jenkins.plugins.kubernetes.volumes

// Stub of HostPathVolume (kubernetes-plugin): jenkinsci/kubernetes-plugin
// commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/volumes/HostPathVolume.java:
// @DataBoundConstructor HostPathVolume(String hostPath, String mountPath,
// Boolean readOnly) (L47-52; the constructor is L48). Here so tests can hold a volume that
// agentforge does not manage.
class HostPathVolume extends PodVolume {
    private String hostPath
    private String mountPath
    private Boolean readOnly

    HostPathVolume(String hostPath, String mountPath, Boolean readOnly) {
        this.hostPath = hostPath
        this.mountPath = mountPath
        this.readOnly = readOnly
    }

    @Override
    String getMountPath() { mountPath }

    String getHostPath() { hostPath }

    Boolean getReadOnly() { readOnly != null && readOnly }

    @Override
    Map toState() { [kind: 'hostPath', hostPath: hostPath, mountPath: mountPath, readOnly: readOnly] }
}
