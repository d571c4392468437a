// Applies jenkins.clouds of a configuration-as-code file the way the
// configuration-as-code plugin does, against the stubs: every cloud and
// template is constructed afresh (its @DataBoundConstructor with the
// attributes it names), every other attribute goes through its setter,
// describables are picked by their symbol (envVar, emptyDirVolume, merge,
// ...), and the list replaces the clouds Jenkins had: clouds and templates
// missing from the YAML are gone, and a template without an id gets a new
// random one (configuration-as-code-plugin DescribableListAttribute.setValue
// -> replaceBy; DataBoundConfigurator; kubernetes-plugin PodTemplate(String
// id)). An attribute without a setter fails the whole apply, as JCasC's
// "Invalid configuration elements for type" does. args[0] is the clouds
// list as JSON (variables already resolved); prints OK or ERROR <message>.
import groovy.json.JsonSlurper
import jenkins.model.Jenkins
import org.csanchez.jenkins.plugins.kubernetes.ContainerLivenessProbe
import org.csanchez.jenkins.plugins.kubernetes.ContainerTemplate
import org.csanchez.jenkins.plugins.kubernetes.KubernetesCloud
import org.csanchez.jenkins.plugins.kubernetes.PodAnnotation
import org.csanchez.jenkins.plugins.kubernetes.PodImagePullSecret
import org.csanchez.jenkins.plugins.kubernetes.PodTemplate
import org.csanchez.jenkins.plugins.kubernetes.model.KeyValueEnvVar
import org.csanchez.jenkins.plugins.kubernetes.model.SecretEnvVar
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Merge
import org.csanchez.jenkins.plugins.kubernetes.pod.yaml.Overrides
import org.csanchez.jenkins.plugins.kubernetes.volumes.EmptyDirVolume
import org.csanchez.jenkins.plugins.kubernetes.volumes.HostPathVolume

// Describables by symbol: class and @DataBoundConstructor parameters.
def symbols = [
        kubernetes            : [KubernetesCloud, ['name']],
        envVar                : [KeyValueEnvVar, ['key', 'value']],
        secretEnvVar          : [SecretEnvVar, ['key', 'secretName', 'secretKey', 'optional']],
        emptyDirVolume        : [EmptyDirVolume, ['mountPath', 'memory']],
        hostPathVolume        : [HostPathVolume, ['hostPath', 'mountPath', 'readOnly']],
        merge                 : [Merge, []],
        override              : [Overrides, []],
        containerLivenessProbe: [ContainerLivenessProbe, ['execArgs', 'timeoutSeconds', 'initialDelaySeconds', 'failureThreshold', 'periodSeconds', 'successThreshold']],
]
// Attributes whose values have one concrete class (no symbol in the YAML).
def plainTypes = [
        templates       : [PodTemplate, ['id']],
        containers      : [ContainerTemplate, ['name', 'image']],
        annotations     : [PodAnnotation, ['key', 'value']],
        imagePullSecrets: [PodImagePullSecret, ['name']],
        livenessProbe   : [ContainerLivenessProbe, ['execArgs', 'timeoutSeconds', 'initialDelaySeconds', 'failureThreshold', 'periodSeconds', 'successThreshold']],
]

def convert = { Object v, Class type ->
    if (v == null) {
        return null
    }
    switch (type) {
        case String: return v.toString()
        case [int, Integer]: return v as Integer
        case [long, Long]: return v as Long
        case [boolean, Boolean]: return v instanceof String ? Boolean.parseBoolean(v) : v as Boolean
        default:
            if (type.isEnum()) {
                return Enum.valueOf(type, v.toString())
            }
            return v
    }
}

def build
// describable: a {symbol: attributes} map, or a bare symbol string.
def describable = { Object v, String where ->
    def symbol = v instanceof String ? v : (v instanceof Map && v.size() == 1 ? v.keySet().first() : null)
    if (!symbols.containsKey(symbol)) {
        throw new IllegalArgumentException("No configurator for symbol '" + symbol + "' at " + where)
    }
    def attrs = v instanceof Map ? (v[symbol] ?: [:]) : [:]
    return build(symbols[symbol][0], symbols[symbol][1], attrs as Map, where + '.' + symbol)
}
build = { Class cls, List ctorArgs, Map attrs, String where ->
    def ctor = cls.constructors.find { it.parameterCount == ctorArgs.size() && (ctorArgs.isEmpty() || it.parameterTypes[0] != cls) }
    def args = []
    ctorArgs.eachWithIndex { a, i -> args << convert(attrs[a], ctor.parameterTypes[i]) }
    def obj = ctor.newInstance(args as Object[])
    attrs.each { String k, v ->
        if (k in ctorArgs) {
            return
        }
        def setters = cls.methods.findAll { it.name == 'set' + k.capitalize() && it.parameterCount == 1 }
        if (!setters) {
            throw new IllegalArgumentException('Invalid configuration elements for type: ' + cls + ' : ' + k + ' (at ' + where + ')')
        }
        def setter = setters.find { it.parameterTypes[0] == String && v instanceof String } ?: setters.find { List.isAssignableFrom(it.parameterTypes[0]) && v instanceof List } ?: setters[0]
        def type = setter.parameterTypes[0]
        def value
        if (v instanceof List) {
            value = v.collect { item -> plainTypes.containsKey(k) ? build(plainTypes[k][0], plainTypes[k][1], item as Map, where + '.' + k) : describable(item, where + '.' + k) }
        } else if (plainTypes.containsKey(k) && v instanceof Map) {
            value = build(plainTypes[k][0], plainTypes[k][1], v as Map, where + '.' + k)
        } else if (!type.isPrimitive() && !(type in [String, Integer, Long, Boolean]) && !type.isEnum()) {
            value = describable(v, where + '.' + k)
        } else {
            value = convert(v, type)
        }
        setter.invoke(obj, value)
    }
    return obj
}

try {
    def clouds = new JsonSlurper().parse(new File(args[0])).collect { describable(it, 'jenkins.clouds') }
    def j = Jenkins.get()
    j.clouds.clear()
    j.clouds.addAll(clouds)
    j.save()
    println 'OK'
} catch (Throwable e) {
    println 'ERROR ' + e
}
