// Package images loads, validates and renders agentforge image definitions.
//
// A definition is a folder holding image.yaml, a Containerfile and any files
// the Containerfile copies. Load reads one from any fs.FS (a folder on disk or
// the definitions embedded in the binary), checks every field and reports
// problems as "image.yaml:LINE: message". Values can be overridden with
// key=value pairs (the CLI's --set). The package never talks to registries or
// Jenkins.
package images
