package jenkins

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/agentforge/agentforge/jenkins/jenkinstest"
)

// adminEdited is the python-agent template as an admin left it after
// agentforge created it: an environment variable (and one from a Secret)
// and a liveness probe on the jnlp container, a sidecar container, a
// hostPath volume, an annotation of their own, an image pull secret, a
// node selector and a pod-level environment variable.
func adminEdited(image string) jenkinstest.State {
	return jenkinstest.State{Clouds: []jenkinstest.Cloud{{Kind: "kubernetes", Name: "kubernetes", Templates: []map[string]any{{
		"id": "python-id", "name": "python-agent", "label": "python", "namespace": "ci", "idleMinutes": 10,
		"containers": []map[string]any{
			{"name": "docker", "image": "docker:dind", "privileged": true},
			{"name": "jnlp", "image": image, "workingDir": AgentWorkingDir, "resourceRequestCpu": "500m", "resourceRequestMemory": "1Gi", "resourceLimitMemory": "2Gi",
				"command": "", "args": "", "shell": "/bin/bash", "alwaysPullImage": true,
				"envVars": []map[string]any{
					{"kind": "envVar", "key": "HTTP_PROXY", "value": "http://proxy.example:3128"},
					{"kind": "secretEnvVar", "key": "NPM_TOKEN", "secretName": "npm", "secretKey": "token"},
				},
				"livenessProbe": map[string]any{"execArgs": "test -e /tmp/alive", "timeoutSeconds": 5, "initialDelaySeconds": 10, "failureThreshold": 3, "periodSeconds": 30, "successThreshold": 1},
			},
		},
		"volumes":          []map[string]any{{"kind": "hostPath", "hostPath": "/var/cache/pip", "mountPath": "/home/jenkins/.cache/pip"}},
		"annotations":      []map[string]any{{"key": "agentforge.io/managed-by", "value": "agentforge"}, {"key": "team", "value": "data"}},
		"imagePullSecrets": []string{"corp-registry"},
		"nodeSelector":     "disktype=ssd",
		"envVars":          []map[string]any{{"kind": "envVar", "key": "TZ", "value": "UTC"}},
	}}}}}
}

// An update changes only what agentforge owns: the admin's environment
// variables, probe, shell, pull policy, sidecar, volume, annotation, pull
// secret, node selector and pod environment stay as they were, and the
// jnlp container keeps its place.
func TestRegister_UpdateKeepsWhatAnAdminSet(t *testing.T) {
	srv := jenkinstest.New(t, jenkinstest.Options{Users: []jenkinstest.User{admin}, State: adminEdited(digestA)})
	c := connect(t, srv, "admin", token)
	before := storedTemplate(t, srv, "python-agent")
	out, err := c.Register(context.Background(), pythonTemplate(digestB), Options{})
	if err != nil || out.Status != "updated" || out.Template.ID != "python-id" {
		t.Fatalf("update: %+v %v", out, err)
	}
	after := storedTemplate(t, srv, "python-agent")
	containers := after["containers"].([]any)
	if len(containers) != 2 || containers[0].(map[string]any)["name"] != "docker" {
		t.Fatalf("containers: %s", mustJSON(containers))
	}
	jnlp := containers[1].(map[string]any)
	wantJnlp := before["containers"].([]any)[1].(map[string]any)
	wantJnlp["image"] = digestB
	if got, want := mustJSON(withoutNulls(jnlp)), mustJSON(withoutNulls(wantJnlp)); got != want {
		t.Errorf("jnlp container:\n got %s\nwant %s", got, want)
	}
	for _, k := range []string{"volumes", "annotations", "imagePullSecrets", "nodeSelector", "envVars"} {
		if got, want := mustJSON(withoutNulls(after[k])), mustJSON(withoutNulls(before[k])); got != want {
			t.Errorf("%s: got %s, want %s", k, got, want)
		}
	}
	// Read back: unchanged on a second run, with the admin's edits there.
	again, err := c.Register(context.Background(), pythonTemplate(digestB), Options{})
	if err != nil || again.Status != "unchanged" {
		t.Fatalf("rerun: %+v %v", again, err)
	}
}

// withoutNulls drops null values and false booleans from decoded JSON (the
// stubs save every field; a test's state lists only what it sets).
func withoutNulls(v any) any {
	data, _ := json.Marshal(v)
	var x any
	json.Unmarshal(data, &x)
	var walk func(any) any
	walk = func(v any) any {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if x == nil || x == false {
					delete(v, k)
					continue
				}
				v[k] = walk(x)
			}
		case []any:
			for i := range v {
				v[i] = walk(v[i])
			}
		}
		return v
	}
	return walk(x)
}
