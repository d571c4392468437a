package org.csanchez.jenkins.plugins.kubernetes

// Stub of ContainerTemplate (kubernetes-plugin), same constructor check and
// setters as the real class; state kept in plain fields.
class ContainerTemplate {
    private String name
    private String image
    private String workingDir = '/home/jenkins/agent'
    private String command = ''
    private String args = ''
    private boolean ttyEnabled
    private boolean alwaysPullImage
    private String resourceRequestCpu
    private String resourceRequestMemory
    private String resourceLimitCpu
    private String resourceLimitMemory

    ContainerTemplate(String name, String image) {
        if (image == null || !image.matches('\\S+')) {
            throw new IllegalArgumentException('Image name must not be empty or contain whitespace')
        }
        if (name == null || !name.matches('[a-z0-9]([-a-z0-9]*[a-z0-9])?')) {
            throw new IllegalArgumentException('Invalid container name: ' + name)
        }
        this.name = name
        this.image = image
    }

    String getName() { name }
    String getImage() { image }
    void setImage(String image) { this.image = image }
    String getWorkingDir() { workingDir }
    void setWorkingDir(String v) { workingDir = v }
    String getCommand() { command }
    void setCommand(String v) { command = v }
    String getArgs() { args }
    void setArgs(String v) { args = v }
    boolean isTtyEnabled() { ttyEnabled }
    void setTtyEnabled(boolean v) { ttyEnabled = v }
    boolean isAlwaysPullImage() { alwaysPullImage }
    void setAlwaysPullImage(boolean v) { alwaysPullImage = v }
    String getResourceRequestCpu() { resourceRequestCpu }
    void setResourceRequestCpu(String v) { resourceRequestCpu = v }
    String getResourceRequestMemory() { resourceRequestMemory }
    void setResourceRequestMemory(String v) { resourceRequestMemory = v }
    String getResourceLimitCpu() { resourceLimitCpu }
    void setResourceLimitCpu(String v) { resourceLimitCpu = v }
    String getResourceLimitMemory() { resourceLimitMemory }
    void setResourceLimitMemory(String v) { resourceLimitMemory = v }

    Map toState() {
        [name: name, image: image, workingDir: workingDir, command: command, args: args,
         ttyEnabled: ttyEnabled, alwaysPullImage: alwaysPullImage,
         resourceRequestCpu: resourceRequestCpu, resourceRequestMemory: resourceRequestMemory,
         resourceLimitCpu: resourceLimitCpu, resourceLimitMemory: resourceLimitMemory]
    }

    static ContainerTemplate fromState(Map m) {
        def c = new ContainerTemplate(m.name as String, m.image as String)
        ['workingDir', 'command', 'args', 'resourceRequestCpu', 'resourceRequestMemory',
         'resourceLimitCpu', 'resourceLimitMemory'].each { k -> c."$k" = m[k] }
        c.ttyEnabled = m.ttyEnabled as boolean
        c.alwaysPullImage = m.alwaysPullImage as boolean
        return c
    }
}
