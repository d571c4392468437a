package org.csanchez.jenkins.plugins.kubernetes.model

// Stub of SecretEnvVar (kubernetes-plugin), an environment variable read
// from a Kubernetes Secret: jenkinsci/kubernetes-plugin commit a82d78a0,
// src/main/java/org/csanchez/jenkins/plugins/kubernetes/model/SecretEnvVar.java:
// @DataBoundConstructor SecretEnvVar(String key, String secretName, String
// secretKey, Boolean optional) (L49-55); JCasC symbol secretEnvVar (L103).
// Here so tests can hold an admin's variable that agentforge must keep.
class SecretEnvVar extends TemplateEnvVar {
    private String secretName
    private String secretKey
    private Boolean optional

    SecretEnvVar(String key, String secretName, String secretKey, Boolean optional) {
        super(key)
        this.secretName = secretName
        this.secretKey = secretKey
        this.optional = optional
    }

    String getSecretName() { secretName }

    String getSecretKey() { secretKey }

    Boolean getOptional() { optional }

    @Override
    Map toState() { [kind: 'secretEnvVar', key: key, secretName: secretName, secretKey: secretKey, optional: optional] }
}
