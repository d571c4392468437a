package images

import (
	"strings"

	"github.com/agentforge/agentforge/images/errs"
)

// ParseOverrides turns key=value pairs (the CLI's --set) into a map. A pair
// without "=" or with an empty key is an error.
func ParseOverrides(pairs []string) (map[string]string, error) {
	out := make(map[string]string, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, errs.Inputf("set %q: want key=value", p)
		}
		out[k] = v
	}
	return out, nil
}

// applyOverrides writes overrides into the raw definition before it is
// rendered. Keys: version, base.image, base.digest, sourceDateEpoch,
// args.NAME, labels.NAME, or the name of a variable the definition declares.
// An unknown key is an error: a typo must not build something else silently.
func (v *validator) applyOverrides(raw *rawDefinition, overrides map[string]string) {
	for _, k := range sortedKeys(overrides) {
		val := str{Value: overrides[k]}
		switch {
		case k == "version":
			raw.Version = val
		case k == "base.image":
			raw.Base.value.Image = val
		case k == "base.digest":
			raw.Base.value.Digest = val
		case k == "sourceDateEpoch":
			raw.SourceDateEpoch = val
		case strings.HasPrefix(k, "args."):
			if raw.Args == nil {
				raw.Args = map[string]str{}
			}
			raw.Args[strings.TrimPrefix(k, "args.")] = val
		case strings.HasPrefix(k, "labels."):
			if raw.Labels == nil {
				raw.Labels = map[string]str{}
			}
			raw.Labels[strings.TrimPrefix(k, "labels.")] = val
		default:
			if _, ok := raw.Variables[k]; !ok {
				v.errorf(0, "set %s: no such variable (variables: %s; also version, base.image, base.digest, sourceDateEpoch, args.NAME, labels.NAME)",
					k, strings.Join(sortedKeys(raw.Variables), ", "))
				continue
			}
			raw.Variables[k] = val
		}
	}
}
