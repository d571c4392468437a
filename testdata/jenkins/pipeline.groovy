// Runs a declarative Jenkinsfile (args[0]) with Groovy 2.4 against a
// recording stand-in of the Pipeline DSL, and prints every step it calls,
// one JSON object a line: {"path": "stages/stage:Index/steps/...", "step": "sh", "args": [...]}.
// Closures run as Jenkins would run them (all of them: `when` is recorded,
// not evaluated), so the Go test can check which steps run where, with which
// credentials. Steps that return data answer like Jenkins would:
// readJSON returns a map like build, outdated, bump and publish reports.
import groovy.json.JsonOutput

class PipelineError extends RuntimeException {
  PipelineError(String message) { super(message) }
}

abstract class PipelineScript extends Script {
  List<String> stack = []
  List<Map> calls = []

  def methodMissing(String name, Object args) {
    List a = args as List
    List plain = a.findAll { !(it instanceof Closure) }.collect { describe(it) }
    String label = name
    if (name == 'stage' && plain) label = 'stage:' + plain[0]
    calls << [path: stack.join('/'), step: name, args: plain]
    if (name == 'error') throw new PipelineError(plain ? plain[0] as String : '')
    a.findAll { it instanceof Closure }.each { Closure c ->
      stack.push(label)
      // error() ends its stage, as Jenkins fails it; the recording goes
      // on with the next stage (whose when is not evaluated either).
      try { c.call() } catch (PipelineError e) { if (name != 'stage') throw e } finally { stack.pop() }
    }
    switch (name) {
      // sh(returnStatus: true, …) answers $PIPELINE_SH_STATUS (default 0).
      case 'sh': return a && a[0] instanceof Map && a[0].returnStatus ? (System.getenv('PIPELINE_SH_STATUS') ?: '0') as Integer : null
      case 'readJSON': return [status: 'bumped', digest: 'sha256:' + ('0' * 64), outdated: 1,
                               problems: System.getenv('PIPELINE_SH_STATUS') == '1' ? [[kind: 'remoting', error: 'repo.jenkins-ci.org: 503']] : [],
                               failed: System.getenv('PIPELINE_SH_STATUS') == '1' ? [[kind: 'cpython', error: 'sha256 mismatch']] : [],
                               findings: [[kind: 'cpython', outdated: true], [kind: 'release', outdated: System.getenv('PIPELINE_BEHIND') == 'true']],
                               tags: ['0.6.0-rc0-python3.11.9-0123456789ab', '0.6.0-rc0', '0.6.0-rc0-python3.11.9'],
                               rollingTags: ['0.6.0-rc0', '0.6.0-rc0-python3.11.9'],
                               changes: [[kind: 'cpython', from: '3.11.9', to: '3.11.10'], [kind: 'os', from: '412 packages', to: '3 with updates']]]
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
// The branch being built comes from $PIPELINE_BRANCH (Jenkins' BRANCH_NAME
// in a multibranch job), $PIPELINE_BUMP_BRANCH sets the BUMP_BRANCH parameter.
def binding = new Binding([params: [UPSTREAM: 'registry.example/agents/python-agent', MIRROR: 'mirror.example/agents/python-agent',
                                    BUMP_BRANCH: System.getenv('PIPELINE_BUMP_BRANCH') == 'true'],
                           env: [BRANCH_NAME: System.getenv('PIPELINE_BRANCH'), BUILD_NUMBER: '42'], none: 'none', any: 'any', currentBuild: [:]])
def script = new GroovyShell(this.class.classLoader, binding, cc).parse(new File(args[0]))
script.run()
script.calls.each { println JsonOutput.toJson(it) }
// What the run left in env (a stage's script sets some), as a last "step".
println JsonOutput.toJson([path: '', step: 'env', args: [PipelineScript.describe(binding.env)]])
