// Runs a declarative Jenkinsfile (args[0]) with Groovy 2.4 against a
// recording stand-in of the Pipeline DSL, and prints every step it calls,
// one JSON object a line: {"path": "stages/stage:Index/steps/...", "step": "sh", "args": [...]}.
// Closures run as Jenkins would run them (all of them: `when` is recorded,
// not evaluated), so the Go test can check which steps run where, with which
// credentials. Steps that return data answer like Jenkins would:
// readJSON returns a map with "status" and "digest".
import groovy.json.JsonOutput

abstract class PipelineScript extends Script {
  List<String> stack = []
  List<Map> calls = []

  def methodMissing(String name, Object args) {
    List a = args as List
    List plain = a.findAll { !(it instanceof Closure) }.collect { describe(it) }
    String label = name
    if (name == 'stage' && plain) label = 'stage:' + plain[0]
    calls << [path: stack.join('/'), step: name, args: plain]
    a.findAll { it instanceof Closure }.each { Closure c ->
      stack.push(label)
      try { c.call() } finally { stack.pop() }
    }
    switch (name) {
      case 'readJSON': return [status: 'bumped', digest: 'sha256:' + ('0' * 64)]
      case 'usernamePassword': case 'file': case 'string': return [credentials: plain]
      default: return null
    }
  }

  // An assignment in an environment block (AF = '…') is recorded as a
  // step named after the variable.
  void setProperty(String name, Object value) {
    if (stack && stack[-1] == 'environment') {
      calls << [path: stack.join('/'), step: name, args: [describe(value)]]
      return
    }
    super.setProperty(name, value)
  }

  static def describe(Object o) {
    if (o instanceof Map) return o.collectEntries { k, v -> [(k.toString()): describe(v)] }
    if (o instanceof List) return o.collect { describe(it) }
    return o == null ? null : o.toString()
  }
}

def cc = new org.codehaus.groovy.control.CompilerConfiguration()
cc.scriptBaseClass = PipelineScript.name
def binding = new Binding([params: [UPSTREAM: 'registry.example/agents/python-agent', MIRROR: 'mirror.example/agents/python-agent', VERSION: '0.6.0-rc0'],
                           env: [:], none: 'none', any: 'any', currentBuild: [:]])
def script = new GroovyShell(this.class.classLoader, binding, cc).parse(new File(args[0]))
script.run()
script.calls.each { println JsonOutput.toJson(it) }
