package io.jenkins.plugins.casc

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths

// Stub of ConfigurationAsCode (configuration-as-code plugin), the parts a
// script reads: where the configuration comes from. Line numbers:
// jenkinsci/configuration-as-code-plugin commit 58646eb6,
// plugin/src/main/java/io/jenkins/plugins/casc/ConfigurationAsCode.java.
// On the class path only when the emulator runs with the plugin
// (Options.Casc); the sources are the emulator's Options.CascFile.
class ConfigurationAsCode {
    private static ConfigurationAsCode instance

    private final List<String> sources

    private ConfigurationAsCode(List<String> sources) {
        this.sources = sources
    }

    // L920-922: the extension's single instance.
    static ConfigurationAsCode get() {
        if (instance == null) {
            def env = System.getenv('AGENTFORGE_CASC_SOURCES')
            instance = new ConfigurationAsCode(env ? env.split(File.pathSeparator) as List<String> : [])
        }
        return instance
    }

    // L164-166: the configured sources (CASC_JENKINS_CONFIG, the global
    // configuration's path, or $JENKINS_HOME/jenkins.yaml): files, folders
    // or URLs.
    List<String> getSources() { sources }

    // L801-822: a regular readable file is itself; a folder is searched
    // recursively for *.yml/*.yaml files that are not hidden, sorted; a
    // path that does not exist (a URL, for one) throws
    // ConfiguratorException ("Invalid configuration: '...' isn't a valid
    // path."), modelled here as an IllegalArgumentException.
    List<Path> configs(String path) {
        Path root = Paths.get(path)
        if (!Files.exists(root)) {
            throw new IllegalArgumentException("Invalid configuration: '" + path + "' isn't a valid path.")
        }
        if (Files.isRegularFile(root) && Files.isReadable(root)) {
            return [root]
        }
        def found = []
        root.toFile().eachFileRecurse { File f ->
            def rel = root.relativize(f.toPath())
            boolean hidden = (0..<rel.nameCount).any { rel.getName(it).toString().startsWith('.') }
            if (f.isFile() && !hidden && f.name ==~ /.*\.(yml|yaml|YML|YAML)/) {
                found << f.toPath()
            }
        }
        return found.sort()
    }
}
