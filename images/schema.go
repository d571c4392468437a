package images

import "gopkg.in/yaml.v3"

// The raw* types mirror image.yaml exactly. Every mapping is decoded with
// decodeStrict so that a misspelt key is an error with its line.

type rawDefinition struct {
	Name            str            `yaml:"name"`
	Version         str            `yaml:"version"`
	Description     str            `yaml:"description"`
	Containerfile   str            `yaml:"containerfile"`
	Base            rawBase        `yaml:"base"`
	Variables       map[string]str `yaml:"variables"`
	Args            map[string]str `yaml:"args"`
	Labels          map[string]str `yaml:"labels"`
	Tags            []str          `yaml:"tags"`
	RollingTags     []str          `yaml:"rollingTags"`
	Platforms       []str          `yaml:"platforms"`
	Sources         []rawSource    `yaml:"sources"`
	SourceDateEpoch str            `yaml:"sourceDateEpoch"`
	line            int
}

func (r *rawDefinition) UnmarshalYAML(n *yaml.Node) error {
	type plain rawDefinition
	r.line = n.Line
	return decodeStrict(n, (*plain)(r))
}

type rawBase struct {
	Image  str `yaml:"image"`
	Digest str `yaml:"digest"`
	line   int
}

func (r *rawBase) UnmarshalYAML(n *yaml.Node) error {
	type plain rawBase
	r.line = n.Line
	return decodeStrict(n, (*plain)(r))
}

type rawSource struct {
	Name      str           `yaml:"name"`
	URL       str           `yaml:"url"`
	SHA256    str           `yaml:"sha256"`
	Checksum  *rawChecksum  `yaml:"checksum"`
	Signature *rawSignature `yaml:"signature"`
	Dest      str           `yaml:"dest"`
	Platforms []str         `yaml:"platforms"`
	line      int
}

func (r *rawSource) UnmarshalYAML(n *yaml.Node) error {
	type plain rawSource
	r.line = n.Line
	return decodeStrict(n, (*plain)(r))
}

type rawChecksum struct {
	URL       str `yaml:"url"`
	Algorithm str `yaml:"algorithm"`
	line      int
}

func (r *rawChecksum) UnmarshalYAML(n *yaml.Node) error {
	type plain rawChecksum
	r.line = n.Line
	return decodeStrict(n, (*plain)(r))
}

type rawSignature struct {
	URL         str `yaml:"url"`
	Fingerprint str `yaml:"fingerprint"`
	Key         str `yaml:"key"`
	line        int
}

func (r *rawSignature) UnmarshalYAML(n *yaml.Node) error {
	type plain rawSignature
	r.line = n.Line
	return decodeStrict(n, (*plain)(r))
}
