package org.csanchez.jenkins.plugins.kubernetes.volumes

// Stub of PodVolume (kubernetes-plugin), the base of the template's volumes:
// jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/volumes/PodVolume.java
// (getMountPath, L43-44). PodTemplateBuilder.build (PodTemplateBuilder.java
// L185-210) mounts every volume in every container of the pod, the first
// volume of a mount path winning; the mount path is normalised
// (Paths.normalize, L425-428) and goes through env substitution.
abstract class PodVolume {
    abstract String getMountPath()

    // Test-only: the emulator's state file.
    abstract Map toState()

    static PodVolume fromState(Map m) {
        switch (m.kind) {
            case 'emptyDir':
                return new EmptyDirVolume(m.mountPath as String, m.memory as Boolean)
            case 'hostPath':
                return new HostPathVolume(m.hostPath as String, m.mountPath as String, m.readOnly as Boolean)
            default:
                throw new IllegalArgumentException('volume kind ' + m.kind)
        }
    }
}
