package org.csanchez.jenkins.plugins.kubernetes.volumes

// Stub of EmptyDirVolume (kubernetes-plugin): jenkinsci/kubernetes-plugin
// commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/volumes/EmptyDirVolume.java.
// @DataBoundConstructor EmptyDirVolume(String mountPath, Boolean memory)
// stores both as given (L50-54); getMemory() is never null (L65-68);
// medium "Memory" when memory, else the node's disk (L61-63). CasC symbol
// emptyDirVolume (L86). Present with this constructor in 1.27.2 too.
class EmptyDirVolume extends PodVolume {
    private String mountPath
    private Boolean memory

    EmptyDirVolume(String mountPath, Boolean memory) {
        this.mountPath = mountPath
        this.memory = memory
    }

    @Override
    String getMountPath() { mountPath }

    Boolean getMemory() { memory != null && memory }

    String getMedium() { getMemory() ? 'Memory' : '' }

    @Override
    Map toState() { [kind: 'emptyDir', mountPath: mountPath, memory: memory] }
}
