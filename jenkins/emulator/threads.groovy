// Runs several scripts at once in this one JVM, each on its own thread with
// its own GroovyShell and binding, sharing the stubs' objects: what Jenkins
// does with concurrent /scriptText requests (each on a Jetty thread, all
// against the one Jenkins instance). Every script is compiled first, then
// all start together, so that their reads and writes of Jenkins' objects
// overlap as they can on a busy controller. Each one's output follows a
// line "=== AGENTFORGE-SCRIPT <n>", in the order given.
import java.util.concurrent.CountDownLatch
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer

def imports = new ImportCustomizer()
imports.addStarImports('jenkins', 'jenkins.model', 'hudson', 'hudson.model')
def config = new CompilerConfiguration()
config.addCompilationCustomizers(imports)

def files = args as List
def outs = new String[files.size()]
def start = new CountDownLatch(1)
def threads = []
files.eachWithIndex { f, i ->
    def sw = new StringWriter()
    def pw = new PrintWriter(sw)
    def binding = new Binding()
    binding.setVariable('out', pw)
    // A compile error is the script's answer (a Throwable of evaluate
    // there), not the end of the others.
    def script = null
    Throwable compileError = null
    try {
        script = new GroovyShell(this.class.classLoader, binding, config).parse(new File(f).getText('UTF-8'))
    } catch (Throwable t) {
        compileError = t
    }
    threads << Thread.start {
        start.await()
        try {
            if (compileError != null) {
                throw compileError
            }
            def result = script.run()
            if (result != null) {
                pw.println('Result: ' + result)
            }
        } catch (Throwable t) {
            t.printStackTrace(pw)
        }
        pw.flush()
        outs[i] = sw.toString()
    }
}
start.countDown()
threads*.join()
outs.eachWithIndex { o, i ->
    println('=== AGENTFORGE-SCRIPT ' + i)
    print(o)
}
