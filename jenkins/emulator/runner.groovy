// Runs a script the way Jenkins' /scriptText does (Jenkins.java _doScript,
// RemotingDiagnostics): a GroovyShell with the default star imports
// jenkins.*, jenkins.model.*, hudson.*, hudson.model.*, "out" bound to a
// PrintWriter, "Result: <value>" after a non-null return value, and any
// Throwable - compile errors included - printed as a stack trace.
import org.codehaus.groovy.control.CompilerConfiguration
import org.codehaus.groovy.control.customizers.ImportCustomizer

def text = new File(args[0]).getText('UTF-8')
def sw = new StringWriter()
def pw = new PrintWriter(sw)
def imports = new ImportCustomizer()
imports.addStarImports('jenkins', 'jenkins.model', 'hudson', 'hudson.model')
def config = new CompilerConfiguration()
config.addCompilationCustomizers(imports)
def binding = new Binding()
binding.setVariable('out', pw)
def shell = new GroovyShell(this.class.classLoader, binding, config)
try {
    def result = shell.evaluate(text)
    if (result != null) {
        pw.println('Result: ' + result)
    }
} catch (Throwable t) {
    t.printStackTrace(pw)
}
pw.flush()
System.out.print(sw.toString())
