package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/agentforge/agentforge/builder"
	"github.com/agentforge/agentforge/builder/oci"
	"github.com/agentforge/agentforge/builder/oci/remote"
	"github.com/agentforge/agentforge/builder/source"
	"github.com/agentforge/agentforge/images"
	"github.com/agentforge/agentforge/images/errs"
	"github.com/agentforge/agentforge/publisher"
	"github.com/agentforge/agentforge/publisher/sign"
	"github.com/spf13/cobra"
)

// The flag groups: each concern's flags are defined once, in a struct with
// AddFlags, and a command composes the groups it needs (the model is
// cosign's cmd/cosign/cli/options). The global flags (output, logs,
// storage, registries) are the root command's.

// sourceFlags say how a definition's sources are fetched and checked.
type sourceFlags struct {
	mirrors       []string
	cacheDir      string
	skipSignature []string
	keyServer     string
}

func (f *sourceFlags) AddFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.mirrors, "source-mirror", nil, "fetch sources from a mirror: URL-PREFIX=MIRROR-PREFIX (repeatable)")
	fl.StringVar(&f.cacheDir, "cache-dir", defaultCacheDir(), "where checked source downloads are kept ($AGENTFORGE_CACHE)")
	fl.StringArrayVar(&f.skipSignature, "skip-signature", nil, "skip the OpenPGP check of the named source (its checksum is still checked; loudly logged; repeatable)")
	fl.StringVar(&f.keyServer, "keyserver", source.DefaultKeyServer, "keyserver (VKS API) for signing keys not kept in the definition")
}

// fetcher is the source fetcher the flags describe.
func (f *sourceFlags) fetcher(a *app) (*source.Fetcher, error) {
	mirrors, err := parseMirrors(f.mirrors)
	if err != nil {
		return nil, fmt.Errorf("--source-mirror: %w", err)
	}
	skip := map[string]bool{}
	for _, s := range f.skipSignature {
		skip[s] = true
	}
	return &source.Fetcher{CacheDir: f.cacheDir, Mirrors: mirrors, KeyServer: f.keyServer, SkipSignature: skip, Log: a.log, Progress: a.progress}, nil
}

// buildFlags are build's flags.
type buildFlags struct {
	sources        sourceFlags
	set            []string
	registryMirror []string
	tags           []string
	noCache        bool
	epoch          string
	revision       string
	podmanURL      string
	platforms      []string
	sbom           string
	// cache and sign are the registry layer cache's flags; --sign-key
	// signs its entries.
	cache cacheFlags
	sign  signFlags
}

func (f *buildFlags) AddFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.set, "set", nil, "override a definition value: KEY=VALUE (a variable, version, base.image, base.digest, sourceDateEpoch, args.NAME, labels.NAME; repeatable)")
	fl.StringArrayVar(&f.registryMirror, "registry-mirror", nil, "pull base images through a mirror: REGISTRY=MIRROR, e.g. docker.io=mirror.example/docker.io (repeatable)")
	fl.StringArrayVar(&f.tags, "tag", nil, "extra tag for the built image (repeatable)")
	fl.BoolVar(&f.noCache, "no-cache", false, "rebuild every step instead of reusing cached layers")
	fl.StringVar(&f.epoch, "source-date-epoch", "", "timestamp for every file and date in the image, in seconds (default: the definition's, else the last git commit of the definition; $SOURCE_DATE_EPOCH)")
	fl.StringVar(&f.revision, "revision", "", "source revision recorded in org.opencontainers.image.revision (default: the last git commit of the definition)")
	fl.StringSliceVar(&f.platforms, "platform", nil, "platform to build for, os/arch[/variant] (repeatable or comma-separated; default: this machine's); each one the definition declares; several make a manifest list, foreign ones build under qemu-user emulation")
	fl.StringVar(&f.podmanURL, "podman-url", "", "build through a podman service instead of in-process (e.g. unix:///run/podman/podman.sock); the image lands in the service's storage")
	fl.StringVar(&f.sbom, "sbom", "", "write the image's SPDX 2.3 JSON SBOM to this file (a list: one per platform, FILE-os-arch.spdx.json)")
	f.sources.AddFlags(cmd)
	f.cache.AddFlags(cmd)
	f.sign.AddFlags(cmd)
}

// definition loads the definition arg names with the --set overrides.
func (f *buildFlags) definition(arg string) (*images.Definition, error) {
	overrides, err := images.ParseOverrides(f.set)
	if err != nil {
		return nil, fmt.Errorf("--set: %w", err)
	}
	return images.Find(arg, overrides)
}

// options turns the flags into builder options (Store is the caller's).
func (f *buildFlags) options(a *app) (builder.BuildOptions, error) {
	var opts builder.BuildOptions
	var err error
	if f.podmanURL != "" && f.sbom != "" {
		return opts, errs.Inputf("--sbom: the podman service backend builds in the service's storage, which agentforge does not read: build in-process for an SBOM")
	}
	for _, t := range f.tags {
		if err := oci.CheckTag(t); err != nil {
			return opts, fmt.Errorf("--tag: %w", err)
		}
	}
	regMirrors, err := parseMirrors(f.registryMirror)
	if err != nil {
		return opts, fmt.Errorf("--registry-mirror: %w", err)
	}
	if opts.SourceDateEpoch, err = sourceDateEpoch(f.epoch); err != nil {
		return opts, err
	}
	if opts.Fetcher, err = f.sources.fetcher(a); err != nil {
		return opts, err
	}
	if opts.Hosts, err = a.hosts(regMirrors, remote.RetryPolicy{}); err != nil {
		return opts, err
	}
	// The key is loaded before anything is built: a wrong passphrase
	// costs nothing.
	signer, err := f.sign.signer()
	if err != nil {
		return opts, err
	}
	if opts.Cache, err = f.cache.cache(signer); err != nil {
		return opts, err
	}
	opts.Platforms, opts.Revision, opts.ExtraTags, opts.NoCache = f.platforms, f.revision, f.tags, f.noCache
	opts.Output, opts.Log, opts.Progress = a.stderr, a.log, a.progress
	return opts, nil
}

// parseMirrors parses PREFIX=REPLACEMENT values.
func parseMirrors(list []string) ([]remote.Mirror, error) {
	var out []remote.Mirror
	for _, s := range list {
		m, err := remote.ParseMirror(s)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

// sourceDateEpoch parses --source-date-epoch, or else $SOURCE_DATE_EPOCH;
// nil when neither is set.
func sourceDateEpoch(flag string) (*time.Time, error) {
	epoch := flag
	if epoch == "" {
		epoch = os.Getenv("SOURCE_DATE_EPOCH")
	}
	if epoch == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(epoch, 10, 64)
	if err != nil || n < 0 || n > 253402300799 {
		return nil, errs.Inputf("--source-date-epoch %q: want seconds since 1970, before the year 10000", epoch)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// pushFlags say where and how images are pushed (publish, mirror, index),
// and what is signed there: sign holds the signing flags of the commands
// that add them (publish, index); left empty, nothing is signed.
type pushFlags struct {
	sign           signFlags
	to             []string
	tags           []string
	rolling        []string
	allowOverwrite bool
	keepDigest     bool
	verify         string
	retries        int
	workDir        string
}

func (f *pushFlags) AddFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.to, "to", nil, "destination host/repo[:tag] (repeatable; docker:// optional)")
	fl.StringArrayVar(&f.tags, "tag", nil, "tag to write on destinations given without one; never moved once it names an image (repeatable)")
	fl.StringArrayVar(&f.rolling, "rolling-tag", nil, "rolling tag to write on destinations given without one: moved to this image whatever it names now, logged from -> to (repeatable)")
	fl.BoolVar(&f.allowOverwrite, "allow-overwrite", false, "move a tag that already points to another digest")
	fl.StringVar(&f.verify, "verify", publisher.VerifyFull, "after pushing: full (download and check every blob), fast (manifest, config, HEAD each layer) or none")
	fl.IntVar(&f.retries, "retries", 4, "tries in a row per registry operation while the registry takes nothing else (network errors, 408/429/5xx); a blob is retried as long as the others get through, up to 10 minutes")
	fl.StringVar(&f.workDir, "work-dir", filepath.Join(defaultCacheDir(), "publish"), "staging layouts (reused between runs; a run that died leaves a *.partial-* folder, which a publish removes once it is an hour old) and temporary files")
}

// options are the publisher.Options the flags ask for. The signing key
// and the SBOM are loaded first: a wrong passphrase changes nothing.
func (f *pushFlags) options(a *app) (publisher.Options, error) {
	if f.retries < 1 {
		return publisher.Options{}, errs.Inputf("--retries %d: want at least 1", f.retries)
	}
	signing, err := f.sign.signing()
	if err != nil {
		return publisher.Options{}, err
	}
	hosts, err := a.hosts(nil, remote.RetryPolicy{Attempts: f.retries})
	if err != nil {
		return publisher.Options{}, err
	}
	return publisher.Options{Hosts: hosts, AllowOverwrite: f.allowOverwrite, KeepDigest: f.keepDigest, Verify: f.verify, WorkDir: f.workDir, Log: a.log, Progress: a.progress, Sign: signing}, nil
}

// destinations parses --to values; those without a tag get --tag, or
// else defaultTags.
func (f *pushFlags) destinations(defaultTags []string) ([]publisher.Destination, error) {
	if len(f.to) == 0 {
		return nil, errs.Inputf("no destination: give at least one --to host/repo[:tag]")
	}
	if len(f.tags) > 0 {
		defaultTags = f.tags
	}
	var out []publisher.Destination
	for _, s := range f.to {
		d, err := publisher.ParseDestination(s, slices.Concat(defaultTags, f.rolling))
		if err != nil {
			return nil, fmt.Errorf("--to: %w", err)
		}
		d.Rolling = f.rolling
		out = append(out, d)
	}
	return out, nil
}

// signFlags are the signing flags of publish, index, release and sign:
// --sign-key and --sign-passphrase-file (the passphrase otherwise comes
// from $COSIGN_PASSWORD, as for cosign; never from a flag value), and
// --sbom to attest where the command takes one.
type signFlags struct {
	key            string
	passphraseFile string
	sbom           string
}

func (f *signFlags) AddFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.key, "sign-key", "", "sign the pushed digest with this cosign private key (cosign generate-key-pair, agentforge keygen)")
	fl.StringVar(&f.passphraseFile, "sign-passphrase-file", "", "file holding the key's passphrase (default: $COSIGN_PASSWORD)")
}

// AddSBOMFlag adds --sbom, an SPDX file attested with the signature.
func (f *signFlags) AddSBOMFlag(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.sbom, "sbom", "", "attach this SPDX JSON document (build --sbom) as a signed attestation (needs --sign-key)")
}

// signer loads the key; nil when --sign-key was not given. Call it before
// pushing anything, so that a wrong passphrase changes nothing.
func (f *signFlags) signer() (sign.Signer, error) {
	if f.key == "" {
		if f.passphraseFile != "" {
			return nil, errs.Inputf("--sign-passphrase-file goes with --sign-key")
		}
		if f.sbom != "" {
			return nil, errs.Inputf("--sbom is attached as a signed attestation: it needs --sign-key")
		}
		return nil, nil
	}
	pass, err := readPassphrase(f.passphraseFile, "--sign-passphrase-file")
	if err != nil {
		return nil, err
	}
	k, err := sign.LoadPrivateKey(f.key, pass)
	if err != nil {
		return nil, fmt.Errorf("--sign-key: %w", err)
	}
	return k, nil
}

// signing is what publish and index sign (nil without --sign-key): the
// pushed digest, with the --sbom file attached as a signed SPDX
// attestation; see publisher.Signing. The key and the SBOM are read here,
// before anything is pushed.
func (f *signFlags) signing() (*publisher.Signing, error) {
	s, err := f.signer()
	if s == nil || err != nil {
		return nil, err
	}
	sbom, err := f.readSBOM()
	if err != nil {
		return nil, err
	}
	return &publisher.Signing{Signer: s, SBOM: sbom}, nil
}

// readSBOM reads --sbom, checked to be an SPDX JSON document.
func (f *signFlags) readSBOM() ([]byte, error) {
	if f.sbom == "" {
		return nil, nil
	}
	data, err := os.ReadFile(f.sbom)
	if err != nil {
		return nil, errs.Inputf("--sbom: %w", err)
	}
	var doc struct {
		SPDXVersion string `json:"spdxVersion"`
	}
	if err := json.Unmarshal(data, &doc); err != nil || !strings.HasPrefix(doc.SPDXVersion, "SPDX-") {
		return nil, errs.Inputf("--sbom %s: not an SPDX JSON document (build --sbom writes one)", f.sbom)
	}
	return data, nil
}

// readPassphrase reads a passphrase from file (one trailing newline
// dropped) or, without one, from $COSIGN_PASSWORD (which may be set and
// empty, for a key without passphrase).
func readPassphrase(file, flag string) ([]byte, error) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, errs.Inputf("%s: %w", flag, err)
		}
		s := strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
		return []byte(s), nil
	}
	if p, ok := os.LookupEnv("COSIGN_PASSWORD"); ok {
		return []byte(p), nil
	}
	return nil, errs.Inputf("no passphrase for the key: set $COSIGN_PASSWORD (empty for none) or %s", flag)
}
