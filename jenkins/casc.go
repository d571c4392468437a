package jenkins

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// CascFragment renders t as the jenkins.clouds[].kubernetes.templates[]
// entry of a configuration-as-code YAML file, for controllers whose
// configuration is managed by JCasC (where script changes are wiped on
// reload). Applying jenkins.clouds replaces the whole list: merge this
// fragment into the full exported configuration. Every string is quoted as
// a JSON string, which YAML reads as the same string.
func CascFragment(t Template) (string, error) {
	if err := t.Validate(); err != nil {
		return "", err
	}
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var b strings.Builder
	fmt.Fprintf(&b, "# Merge into your full configuration: applying jenkins.clouds replaces the whole list.\n")
	fmt.Fprintf(&b, "jenkins:\n  clouds:\n    - kubernetes:\n        name: %s\n        templates:\n", q(t.Cloud))
	fmt.Fprintf(&b, "          - name: %s\n            label: %s\n            nodeUsageMode: %s\n", q(t.Name), q(t.Label), q(t.NodeUsageMode))
	if t.Namespace != "" {
		fmt.Fprintf(&b, "            namespace: %s\n", q(t.Namespace))
	}
	if t.ServiceAccount != "" {
		fmt.Fprintf(&b, "            serviceAccount: %s\n", q(t.ServiceAccount))
	}
	fmt.Fprintf(&b, "            idleMinutes: %d\n", t.IdleMinutes)
	if t.InstanceCap >= 0 {
		fmt.Fprintf(&b, "            instanceCap: %d\n", t.InstanceCap)
	}
	fmt.Fprintf(&b, "            annotations:\n              - key: \"agentforge.io/managed-by\"\n                value: \"agentforge\"\n")
	if len(t.EmptyDirs) > 0 {
		fmt.Fprintf(&b, "            volumes:\n")
		for _, p := range t.EmptyDirs {
			fmt.Fprintf(&b, "              - emptyDirVolume:\n                  mountPath: %s\n                  memory: false\n", q(p))
		}
	}
	fmt.Fprintf(&b, "            containers:\n              - name: \"jnlp\"\n                image: %s\n                workingDir: %s\n", q(t.Image), q(AgentWorkingDir))
	for _, kv := range [][2]string{{"resourceRequestCpu", t.CPURequest}, {"resourceRequestMemory", t.MemoryRequest}, {"resourceLimitCpu", t.CPULimit}, {"resourceLimitMemory", t.MemoryLimit}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, "                %s: %s\n", kv[0], q(kv[1]))
		}
	}
	if t.Privileged {
		fmt.Fprintf(&b, "                privileged: true\n")
	}
	return b.String(), nil
}

// HasCasc reports whether the controller runs the configuration-as-code plugin.
func (c *Client) HasCasc(ctx context.Context) (_ bool, err error) {
	defer func() { err = c.scrub(err) }()
	plugins, err := c.plugins(ctx)
	if err != nil {
		return false, err
	}
	_, ok := plugins["configuration-as-code"]
	return ok, nil
}

// plugins returns the versions of the active plugins by short name.
func (c *Client) plugins(ctx context.Context) (map[string]string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(c.cfg.URL, "/")+"/pluginManager/api/json?depth=1&tree=plugins%5BshortName,active,version%5D", nil)
	if err != nil {
		return nil, err
	}
	req.SetBasicAuth(c.cfg.User, c.cfg.Token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.scrub(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("plugin list: HTTP %s", strconv.Itoa(resp.StatusCode))
	}
	var list struct {
		Plugins []struct {
			ShortName string `json:"shortName"`
			Active    bool   `json:"active"`
			Version   string `json:"version"`
		} `json:"plugins"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&list); err != nil {
		return nil, fmt.Errorf("plugin list: %w", err)
	}
	out := map[string]string{}
	for _, p := range list.Plugins {
		if p.Active {
			out[p.ShortName] = p.Version
		}
	}
	return out, nil
}
