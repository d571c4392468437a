package release

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/images/progress"
	"github.com/agentforge/agentforge/images/redact"
	"github.com/agentforge/agentforge/images/yamlkeys"
	"github.com/agentforge/agentforge/jenkins"
	"github.com/agentforge/agentforge/publisher"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/sirupsen/logrus"
	"go.podman.io/storage"
	"gopkg.in/yaml.v3"
)

// DefaultDefinition is what a release builds when its file names nothing.
const DefaultDefinition = "images/python-agent"

// File is a release file (agentforge release --config FILE): what to
// build, where to publish it, and which Jenkins pod template to point at
// it. LoadFile reads and checks one; File.Config turns it into a release.
// The Jenkins token never goes in it.
type File struct {
	// Definition is a definition folder or a built-in name.
	Definition string `yaml:"definition"`
	// Set overrides definition values (as build --set).
	Set             map[string]string `yaml:"set"`
	SourceMirrors   []remote.Mirror   `yaml:"sourceMirrors"`
	RegistryMirrors []remote.Mirror   `yaml:"registryMirrors"`
	SkipSignature   []string          `yaml:"skipSignature"`
	// Smoke are commands run in the built image before anything is
	// published.
	Smoke [][]string `yaml:"smoke"`
	// Pod is a bash script run in the built image as a pod runs it (uid
	// 1000, privileged, an emptyDir at podman's storage): see
	// builder.RunAsPod.
	Pod string `yaml:"pod"`
	// Platforms to build for (os/arch), each one the definition declares;
	// default this machine's. Platform is the one-platform form.
	Platforms []string `yaml:"platforms"`
	Platform  string   `yaml:"platform"`
	// Destinations are host/repo[:tag]; those without a tag get the
	// definition's tags.
	Destinations   []string     `yaml:"destinations"`
	Verify         string       `yaml:"verify"`
	AllowOverwrite bool         `yaml:"allowOverwrite"`
	Jenkins        *JenkinsFile `yaml:"jenkins"`
	// Cache is the build's registry layer cache (build --cache-from,
	// --cache-to, --cache-verify-key); the release's signer signs its
	// entries.
	Cache *CacheFile `yaml:"cache"`

	path string
}

// CacheFile is the cache part of a release file: repositories (host/path)
// and a cosign public key file (see builder.LayerCache).
type CacheFile struct {
	From      []string `yaml:"from"`
	To        string   `yaml:"to"`
	VerifyKey string   `yaml:"verifyKey"`
}

// JenkinsFile is the jenkins part of a release file: where Jenkins is and
// the pod template itself, register's jenkins.Template with its yaml keys
// (template, label, namespace, …, podman, imagePullSecrets, nodeSelector,
// env); the image is the published digest. The token comes from
// $JENKINS_API_TOKEN or TokenFile, never from the file.
type JenkinsFile struct {
	URL       string `yaml:"url"`
	User      string `yaml:"user"`
	TokenFile string `yaml:"tokenFile"`
	// CAFile is register's --jenkins-ca-file.
	CAFile string `yaml:"caFile"`
	// Destination is the index in destinations whose reference Jenkins
	// pulls (default 0, the upstream).
	Destination int  `yaml:"destination"`
	Adopt       bool `yaml:"adopt"`
	// CascFile, CascReload and ScriptConsole choose the route as
	// register's --casc-file, --casc-reload and --script-console do.
	CascFile         string `yaml:"cascFile"`
	CascReload       bool   `yaml:"cascReload"`
	ScriptConsole    bool   `yaml:"scriptConsole"`
	jenkins.Template `yaml:",inline"`
}

// UnmarshalYAML reads the jenkins block with the template's defaults
// (instanceCap unlimited) under the file's values.
func (j *JenkinsFile) UnmarshalYAML(n *yaml.Node) error {
	type plain JenkinsFile
	// Node.Decode does not refuse unknown keys as the file's decoder does.
	if k, _ := yamlkeys.Unknown(n, reflect.TypeOf(plain{})); k != nil {
		return fmt.Errorf("line %d: field %s not found in the jenkins section", k.Line, k.Value)
	}
	v := plain{Template: jenkins.Template{InstanceCap: -1}}
	if err := n.Decode(&v); err != nil {
		return err
	}
	if v.CascReload && v.CascFile == "" {
		return fmt.Errorf("line %d: cascReload goes with cascFile (the configuration-as-code file Jenkins reloads)", n.Line)
	}
	if v.ScriptConsole && v.CascFile != "" {
		return fmt.Errorf("line %d: scriptConsole and cascFile are two routes: choose one", n.Line)
	}
	*j = JenkinsFile(v)
	return nil
}

// AllPlatforms merges platform and platforms.
func (f *File) AllPlatforms() []string {
	if f.Platform != "" {
		return append([]string{f.Platform}, f.Platforms...)
	}
	return f.Platforms
}

// LoadFile reads and checks a release file. Everything that can be
// checked without building is checked here, before anything runs: unknown
// keys, the verification mode, every smoke command, platform and
// destination, the Jenkins destination and template. A problem is bad
// input (errs.ErrInput) naming FILE:LINE.
func LoadFile(path string) (*File, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, errs.Inputf("release file: %w", err)
	}
	return ParseFile(path, data)
}

// ParseFile is LoadFile on data read from path.
func ParseFile(path string, data []byte) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, errs.Inputf("%s%s", path, yamlMessage(err))
	}
	if len(root.Content) == 0 {
		return nil, errs.Inputf("%s: empty: give at least destinations", path)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	f := &File{path: path}
	if err := dec.Decode(f); err != nil {
		return nil, errs.Inputf("%s%s", path, yamlMessage(err))
	}
	if f.Definition == "" {
		f.Definition = DefaultDefinition
	}
	if err := f.check(root.Content[0]); err != nil {
		return nil, err
	}
	return f, nil
}

// check validates what can be validated without the definition or a
// registry, naming the line of each problem.
func (f *File) check(doc *yaml.Node) error {
	at := func(line int, format string, args ...any) error {
		return errs.Inputf("%s:%d: %s", f.path, line, fmt.Sprintf(format, args...))
	}
	if len(f.Destinations) == 0 {
		return at(lineOf(doc, "destinations"), "destinations: give at least one registry repository")
	}
	for i, d := range f.Destinations {
		if _, err := publisher.ParseDestination(d, nil); err != nil {
			return at(lineOf(doc, "destinations", strconv.Itoa(i)), "destinations[%d]: %v", i, err)
		}
	}
	switch f.Verify {
	case "", publisher.VerifyFull, publisher.VerifyFast, publisher.VerifyNone:
	default:
		return at(lineOf(doc, "verify"), "verify %q: want full, fast or none", f.Verify)
	}
	for i, argv := range f.Smoke {
		if len(argv) == 0 || strings.TrimSpace(argv[0]) == "" {
			return at(lineOf(doc, "smoke", strconv.Itoa(i)), "smoke[%d]: an empty command: give the program and its arguments, e.g. [python3, --version]", i)
		}
	}
	for i, p := range f.AllPlatforms() {
		if _, err := oci.ParsePlatform(p); err != nil {
			key := []string{"platforms", strconv.Itoa(i)}
			if f.Platform != "" {
				key = []string{"platform"}
				if i > 0 {
					key = []string{"platforms", strconv.Itoa(i - 1)}
				}
			}
			return at(lineOf(doc, key...), "%v", err)
		}
	}
	if j := f.Jenkins; j != nil {
		if j.Destination < 0 || j.Destination >= len(f.Destinations) {
			return at(lineOf(doc, "jenkins", "destination"), "jenkins.destination %d: there are %d destinations", j.Destination, len(f.Destinations))
		}
		t := j.template("", f.AllPlatforms())
		t.Image = "placeholder@sha256:" + strings.Repeat("0", 64)
		if t.Name == "" {
			t.Name = "placeholder" // the definition's name, known later
		}
		if err := t.Validate(); err != nil {
			line := lineOf(doc, "jenkins")
			var ie *jenkins.InputError
			if errors.As(err, &ie) && len(ie.Fields) > 0 {
				line = lineOf(doc, "jenkins", jenkinsKey(ie.Fields[0]))
			}
			return at(line, "jenkins: %v", err)
		}
	}
	return nil
}

// template is the pod template the release registers: the file's, with
// the defaults filled in (definition names it when the file does not). An
// image of one architecture must land on nodes of that architecture
// (kubernetes.io/arch, unless the file sets it); an index serves every one
// it lists (a node pulls its own platform), so it gets no selector.
func (j *JenkinsFile) template(definition string, platforms []string) jenkins.Template {
	t := j.Template
	t.Cloud, t.Name, t.Label = or(t.Cloud, "kubernetes"), or(t.Name, definition), or(t.Label, "python")
	if len(platforms) <= 1 && t.NodeSelector[jenkins.ArchLabel] == "" {
		arch := oci.HostPlatform().Arch
		if len(platforms) == 1 {
			if p, err := oci.ParsePlatform(platforms[0]); err == nil {
				arch = p.Arch
			}
		}
		t.NodeSelector = maps.Clone(t.NodeSelector)
		if t.NodeSelector == nil {
			t.NodeSelector = map[string]string{}
		}
		t.NodeSelector[jenkins.ArchLabel] = arch
	}
	return t
}

// jenkinsKey is the release file's key for a jenkins.InputError field.
func jenkinsKey(field string) string {
	switch field {
	case "template", "label", "cloud", "namespace", "image":
		return field
	case "service-account":
		return "serviceAccount"
	case "emptyDir":
		return "podmanStorage"
	}
	// cpu-request -> cpuRequest, idle-minutes -> idleMinutes, …
	parts := strings.Split(field, "-")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}

// lineOf is the line of the value at path (mapping keys and sequence
// indexes) in doc, or of the deepest part of it that exists.
func lineOf(doc *yaml.Node, path ...string) int {
	n, line := doc, doc.Line
	for _, p := range path {
		var next *yaml.Node
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				if n.Content[i].Value == p {
					line, next = n.Content[i].Line, n.Content[i+1]
				}
			}
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(p); err == nil && i >= 0 && i < len(n.Content) {
				next = n.Content[i]
				line = next.Line
			}
		}
		if next == nil {
			return line
		}
		n = next
	}
	return line
}

// yamlMessage is a YAML error as ":LINE: message" (or ": message"),
// to follow the file's name.
func yamlMessage(err error) string {
	msg := strings.TrimPrefix(strings.ReplaceAll(err.Error(), "yaml: unmarshal errors:\n  ", ""), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if n, after, ok := strings.Cut(rest, ": "); ok {
			if _, err := strconv.Atoi(n); err == nil {
				return ":" + n + ": " + after
			}
		}
	}
	return ": " + msg
}

func or(v, fallback string) string {
	if v == "" {
		return fallback
	}
	return v
}

// Env is what a release needs besides its file: where to build, how to
// reach registries and Jenkins, where logs and build output go.
type Env struct {
	// Store is local storage; required.
	Store storage.Store
	// Hosts reach every registry; the caller opens them with the file's
	// RegistryMirrors. Required.
	Hosts *remote.Hosts
	// CacheDir keeps checked source downloads; WorkDir the publish staging
	// layouts; KeyServer is where OpenPGP keys not in a definition come
	// from (default source.DefaultKeyServer).
	CacheDir, WorkDir, KeyServer string
	// SourceDateEpoch overrides the definition's timestamp.
	SourceDateEpoch *time.Time
	// Signer, when set, signs what is published (see Config.Signer);
	// SBOMFile is where the build's SBOM is written.
	Signer   sign.Signer
	SBOMFile string
	// JenkinsToken is the API token for the file's jenkins block
	// ($JENKINS_API_TOKEN or its tokenFile, read by the caller); Secrets
	// receives what the Jenkins client sends, for redaction.
	JenkinsToken string
	Secrets      *redact.Set
	// Log and Output receive progress and build output.
	Log    logrus.FieldLogger
	Output io.Writer
	// Progress shows downloads, pulls, pushes and verification as they go.
	Progress progress.Reporter
}

// Config turns the file into a release: the definition loaded with its
// overrides, destinations given the definition's tags, the pod template
// made. Bad input is found here, before anything is built.
func (f *File) Config(env Env) (Config, error) {
	var c Config
	var err error
	if c.Definition, err = images.Find(f.Definition, f.Set); err != nil {
		return c, err
	}
	skip := map[string]bool{}
	for _, s := range f.SkipSignature {
		skip[s] = true
	}
	keyServer := env.KeyServer
	if keyServer == "" {
		keyServer = source.DefaultKeyServer
	}
	c.Build = builder.BuildOptions{
		Store:           env.Store,
		Fetcher:         &source.Fetcher{CacheDir: env.CacheDir, Mirrors: f.SourceMirrors, KeyServer: keyServer, SkipSignature: skip, Log: env.Log, Progress: env.Progress},
		Hosts:           env.Hosts,
		SourceDateEpoch: env.SourceDateEpoch,
		Platforms:       f.AllPlatforms(),
		Output:          env.Output,
		Log:             env.Log,
		Progress:        env.Progress,
	}
	if cf := f.Cache; cf != nil {
		if c.Build.Cache, err = builder.ParseLayerCache(cf.From, cf.To, cf.VerifyKey, [3]string{"cache.from", "cache.to", "cache.verifyKey"}); err != nil {
			return c, fmt.Errorf("%s: %w", f.path, err)
		}
		if c.Build.Cache != nil && c.Build.Cache.To != nil {
			c.Build.Cache.Signer = env.Signer
		}
	}
	c.Smoke = f.Smoke
	if f.Pod != "" {
		c.Pod = &PodCheck{Script: f.Pod, Options: builder.PodRunOptions{Privileged: true, EmptyDir: jenkins.PodmanStorage}}
		if !builder.UserNamespaces(context.Background()) {
			c.Pod.Options.Env = append(c.Pod.Options.Env, "AGENTFORGE_CHROOTED=1")
		}
	}
	// Destinations without a tag get the build's (see Run).
	for _, s := range f.Destinations {
		d, err := publisher.ParseDestination(s, nil)
		if err != nil {
			return c, err
		}
		c.Destinations = append(c.Destinations, d)
	}
	c.Publish = publisher.Options{Hosts: env.Hosts, Verify: or(f.Verify, publisher.VerifyFull), AllowOverwrite: f.AllowOverwrite, WorkDir: env.WorkDir, Log: env.Log, Progress: env.Progress}
	c.Signer, c.SBOMFile, c.Log = env.Signer, env.SBOMFile, env.Log
	if j := f.Jenkins; j != nil {
		c.Jenkins = &Jenkins{
			Client:      jenkins.Config{URL: or(j.URL, os.Getenv("JENKINS_URL")), User: or(j.User, os.Getenv("JENKINS_USER")), Token: env.JenkinsToken, CAFile: j.CAFile, Log: env.Log, Secrets: env.Secrets},
			Template:    j.template(c.Definition.Name, f.AllPlatforms()),
			Destination: j.Destination,
			Options:     jenkins.Options{Adopt: j.Adopt, ScriptConsole: j.ScriptConsole},
			CascFile:    j.CascFile,
			CascReload:  j.CascReload,
		}
	}
	return c, c.Check()
}
