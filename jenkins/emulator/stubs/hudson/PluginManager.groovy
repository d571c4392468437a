package hudson

// Stub of hudson.PluginManager (Jenkins core): the class loader that sees
// every plugin's classes, as in jenkinsci/jenkins commit ff9430ee,
// core/src/main/java/hudson/PluginManager.java L367 (public final
// ClassLoader uberClassLoader). Here it is the loader of the stubs, so a
// plugin's classes are found exactly when the emulator puts that plugin's
// stubs on the class path.
class PluginManager {
    public final ClassLoader uberClassLoader = PluginManager.classLoader
}
