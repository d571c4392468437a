package hudson.model

// Stub of hudson.model.Node: only the Mode enum, as in Jenkins core.
abstract class Node {
    enum Mode {
        NORMAL, EXCLUSIVE
    }
}
