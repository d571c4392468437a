package hudson.slaves

// Stub of hudson.slaves.Cloud (Jenkins core): a named cloud.
abstract class Cloud {
    public String name

    protected Cloud(String name) {
        this.name = name
    }

    String getDisplayName() {
        return name
    }

    // Test-only: serialise to the emulator's state file.
    abstract Map toState()
}
