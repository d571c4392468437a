package org.csanchez.jenkins.plugins.kubernetes

import hudson.Util
import org.csanchez.jenkins.plugins.kubernetes.model.TemplateEnvVar

// Stub of ContainerTemplate (kubernetes-plugin), doing what the real
// constructor and setters do. Line numbers: jenkinsci/kubernetes-plugin
// commit a82d78a0 (4423.vb_59f230b_ce53-2-ga82d78a0),
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/ContainerTemplate.java.
class ContainerTemplate {
    // L32.
    static final String DEFAULT_WORKING_DIR = '/home/jenkins/agent'

    // Properties (Groovy writes their getter and setter) are stored as
    // given, as the real setters do: name, image (L92-113), privileged
    // (L171-178: securityContext.privileged, PodTemplateBuilder.java
    // L560-568), command and args (L131-156), ttyEnabled, alwaysPullImage
    // (L206-213), the resource requests and limits (L242-276: "" stays ""),
    // shell (L296-303) and livenessProbe (L224-231).
    String name
    String image
    boolean privileged
    boolean alwaysPullImage
    // L46: no default. DEFAULT_WORKING_DIR is only what the UI form shows.
    String workingDir
    // L48-50.
    String command = ''
    String args = ''
    boolean ttyEnabled
    String resourceRequestCpu
    String resourceRequestMemory
    String resourceLimitCpu
    String resourceLimitMemory
    // L40-42.
    private Long runAsUser
    private Long runAsGroup
    String shell
    // L67: final, initialised; a container loaded from a config.xml
    // without <envVars> (XStream runs no initialiser) has null here, which
    // getEnvVars hides (L215-217) and setEnvVars does not (L219-222).
    private List<TemplateEnvVar> envVars = []
    ContainerLivenessProbe livenessProbe

    // L77-84 (@DataBoundConstructor): only the image is checked
    // (PodTemplateUtils.validateImage, PodTemplateUtils.java L742-744: not
    // null, no whitespace), with a bare IllegalArgumentException. The
    // container name is checked by the UI form only (doCheckName, L337-342).
    ContainerTemplate(String name, String image) {
        if (image == null || !image.matches('\\S+')) {
            throw new IllegalArgumentException()
        }
        this.name = name
        this.image = image
    }

    // L92-113: a copy through the setters, every field (ports are not
    // modelled here).
    ContainerTemplate(ContainerTemplate from) {
        this.setName(from.getName())
        this.setImage(from.getImage())
        this.setPrivileged(from.isPrivileged())
        this.setRunAsUser(from.getRunAsUser())
        this.setRunAsGroup(from.getRunAsGroup())
        this.setAlwaysPullImage(from.isAlwaysPullImage())
        this.setWorkingDir(from.getWorkingDir())
        this.setCommand(from.getCommand())
        this.setArgs(from.getArgs())
        this.setTtyEnabled(from.isTtyEnabled())
        this.setResourceRequestCpu(from.getResourceRequestCpu())
        this.setResourceRequestMemory(from.getResourceRequestMemory())
        this.setResourceLimitCpu(from.getResourceLimitCpu())
        this.setResourceLimitMemory(from.getResourceLimitMemory())
        this.setShell(from.getShell())
        this.setEnvVars(from.getEnvVars())
        this.setLivenessProbe(from.getLivenessProbe())
    }

    // L162-165.
    void setWorkingDir(String v) { workingDir = Util.fixEmpty(v) }

    // L180-204: the container's securityContext runAsUser/runAsGroup,
    // parsed as a Long (PodTemplateUtils.parseLong: null when it does not parse).
    String getRunAsUser() { runAsUser == null ? null : runAsUser.toString() }

    void setRunAsUser(String v) { runAsUser = PodTemplateUtils.parseLong(v) }

    String getRunAsGroup() { runAsGroup == null ? null : runAsGroup.toString() }

    void setRunAsGroup(String v) { runAsGroup = PodTemplateUtils.parseLong(v) }

    // L215-217: the live list (an empty, unmodifiable one when the field
    // is null).
    List<TemplateEnvVar> getEnvVars() { envVars != null ? envVars : Collections.emptyList() }

    // L219-222: ADDS to the list; it does not replace it (and fails when
    // the field is null).
    void setEnvVars(List<TemplateEnvVar> v) { envVars.addAll(v) }

    // Test-only: the emulator's state file.
    Map toState() {
        [name: name, image: image, workingDir: workingDir, command: command, args: args,
         ttyEnabled: ttyEnabled, alwaysPullImage: alwaysPullImage, privileged: privileged,
         resourceRequestCpu: resourceRequestCpu, resourceRequestMemory: resourceRequestMemory,
         resourceLimitCpu: resourceLimitCpu, resourceLimitMemory: resourceLimitMemory,
         runAsUser: getRunAsUser(), runAsGroup: getRunAsGroup(), shell: shell,
         envVars: envVars == null ? null : envVars.collect { it.toState() },
         livenessProbe: livenessProbe?.toState()]
    }

    // Test-only: fields set directly, as XStream does.
    static ContainerTemplate fromState(Map m) {
        def c = new ContainerTemplate(m.name as String, m.image as String)
        c.workingDir = m.workingDir as String
        c.command = m.containsKey('command') ? m.command as String : ''
        c.args = m.containsKey('args') ? m.args as String : ''
        c.ttyEnabled = m.ttyEnabled as boolean
        c.alwaysPullImage = m.alwaysPullImage as boolean
        c.privileged = m.privileged as boolean
        c.resourceRequestCpu = m.resourceRequestCpu as String
        c.resourceRequestMemory = m.resourceRequestMemory as String
        c.resourceLimitCpu = m.resourceLimitCpu as String
        c.resourceLimitMemory = m.resourceLimitMemory as String
        c.runAsUser = PodTemplateUtils.parseLong(m.runAsUser as String)
        c.runAsGroup = PodTemplateUtils.parseLong(m.runAsGroup as String)
        c.shell = m.shell as String
        // Jenkins writes <envVars/> for an empty list, so a state without the
        // key is an empty list; "envVars": null stands for a config.xml
        // without the element, which XStream leaves null.
        c.envVars = !m.containsKey('envVars') ? [] : m.envVars == null ? null : m.envVars.collect { TemplateEnvVar.fromState(it as Map) }
        c.livenessProbe = ContainerLivenessProbe.fromState(m.livenessProbe as Map)
        return c
    }
}
