// agentforge: the plugin version check every script starts with, and the
// cloud lookup they share (spliced in where a script says @@CLOUD@@). It
// uses p and emit.

// PodTemplate(String id) and getId() came with Kubernetes plugin 1.27.2;
// without them a template cannot keep its identity: say so and stop.
try {
    PodTemplate.getConstructor(String)
} catch (NoSuchMethodException ignored) {
    emit([status: 'error', reason: 'plugin-too-old'])
    return
}

// What a script reads of a cloud's templates and writes back happens under
// this lock. Jenkins runs concurrent /scriptText requests on their own
// threads, and the plugin's template list is a plain list (setTemplates
// replaces it, addTemplate appends): two registrations at once would each
// add to the list as they read it, and one template would be lost, or one
// name created twice. Each script is a class of its own, so the lock is a
// string interned in the JVM, named for agentforge alone; nothing else
// takes it, so holding it while Jenkins saves cannot deadlock. It orders
// agentforge's scripts only (of this version on): the plugin's own pages
// (KubernetesCloud.doCreate, PodTemplate's configSubmit and delete, a
// cloud's reconfigure, which copies the templates into a new cloud) and a
// configuration-as-code reload take no lock, and a template written the
// moment one of them runs can still be lost; the read-back after a write
// is what sees that.
final Object TEMPLATES_LOCK = 'agentforge.io/pod-templates'.intern()

// The KubernetesCloud that p.cloud names; otherwise null, having said why.
def kubernetesCloud = { ->
    def clouds = Jenkins.get().clouds
    def c = clouds.getByName(p.cloud as String)
    if (c == null) {
        emit([status: 'error', reason: 'no-such-cloud', clouds: clouds.collect { it.name }])
        return null
    }
    if (!(c instanceof KubernetesCloud)) {
        emit([status: 'error', reason: 'not-kubernetes', kind: c.getClass().name])
        return null
    }
    return c
}

// withTemplate runs body(cloud, template) under TEMPLATES_LOCK, from the
// lookup of p.name's template (null when there is none) to the body's end,
// which is where a script saves: every script reads and writes the list
// through it, so none can do so outside the lock. When p.cloud names no
// Kubernetes cloud, body does not run (kubernetesCloud has said why).
def withTemplate = { Closure body ->
    synchronized (TEMPLATES_LOCK) {
        def cloud = kubernetesCloud()
        if (cloud != null) {
            body(cloud, cloud.templates.find { it.name == p.name })
        }
    }
}
