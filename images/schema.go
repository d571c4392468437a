package images

import "gopkg.in/yaml.v3"

// The raw* types mirror image.yaml exactly. Each is decoded as a mapping[T],
// so that a misspelt key is an error with its line.

// mapping decodes a YAML mapping into value with decodeStrict and keeps
// the mapping's line, for messages about a key that is missing. T has no
// UnmarshalYAML of its own.
type mapping[T any] struct {
	value T
	line  int
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (m *mapping[T]) UnmarshalYAML(n *yaml.Node) error {
	m.line = n.Line
	return decodeStrict(n, &m.value)
}

type rawDefinition struct {
	Name            str                  `yaml:"name"`
	Version         str                  `yaml:"version"`
	Description     str                  `yaml:"description"`
	Containerfile   str                  `yaml:"containerfile"`
	Base            mapping[rawBase]     `yaml:"base"`
	Variables       map[string]str       `yaml:"variables"`
	Args            map[string]str       `yaml:"args"`
	Labels          map[string]str       `yaml:"labels"`
	Tags            []str                `yaml:"tags"`
	RollingTags     []str                `yaml:"rollingTags"`
	Platforms       []str                `yaml:"platforms"`
	Sources         []mapping[rawSource] `yaml:"sources"`
	SourceDateEpoch str                  `yaml:"sourceDateEpoch"`
}

type rawBase struct {
	Image  str `yaml:"image"`
	Digest str `yaml:"digest"`
}

type rawSource struct {
	Name      str                    `yaml:"name"`
	URL       str                    `yaml:"url"`
	SHA256    str                    `yaml:"sha256"`
	Checksum  *mapping[rawChecksum]  `yaml:"checksum"`
	Signature *mapping[rawSignature] `yaml:"signature"`
	Dest      str                    `yaml:"dest"`
	Platforms []str                  `yaml:"platforms"`
}

type rawChecksum struct {
	URL       str `yaml:"url"`
	Algorithm str `yaml:"algorithm"`
}

type rawSignature struct {
	URL         str `yaml:"url"`
	Fingerprint str `yaml:"fingerprint"`
	Key         str `yaml:"key"`
}
