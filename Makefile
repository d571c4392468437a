# agentforge. `make demo` and `make test` set up what they need on a fresh
# Debian machine (as root) and run; see README.md.
GO       ?= go
TAGS     := containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper
# The version is the git tag: `git describe` (v1.2.0, v1.2.0-3-gabc1234 three
# commits after it, -dirty with uncommitted changes); a checkout without a
# v* tag gives dev-<commit>; outside git, dev.
# Computed once, so that every binary of one make run says the same.
ifeq ($(origin VERSION),undefined)
VERSION  := $(shell git describe --tags --match 'v[0-9]*' --dirty 2>/dev/null || \
              { c=$$(git describe --always --dirty 2>/dev/null) && echo dev-$$c; } || echo dev)
endif
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/agentforge
# The one list of system packages (Debian names) that the build, the tests
# and the demo use; .ci/run installs it through `make deps`. The build needs
# no container network backend (netavark/CNI): chroot builds use the host's
# network (see README "Requirements").
#   gcc libc6-dev       cgo (buildah, storage)
#   git ca-certificates module downloads, image revision labels
#   busybox-static      testdata/busybox (tests, quick start)
#   skopeo              cross-checks in the tests, make bench
#   podman runc         the podman-service backend test; the release's pod
#                       check runs the built image as a pod would (runc:
#                       crun fails in some CI containers)
#   debootstrap         the demo's offline base image
#   catatonit           images' init tests put the host's catatonit in a small
#                       image that starts like python-agent (its PID 1)
#   groovy default-jre-headless  the Jenkins emulator runs the Groovy scripts;
#                       the demo's stand-in remoting jar is run by its test
#   bc                  .ci/bench arithmetic
#   qemu-user-static binfmt-support  foreign-platform builds (build --platform
#                       linux/arm64 on amd64, and back); deps also mounts
#                       binfmt_misc and enables the handlers
#   docker-registry     distribution v2.8, the older registry that uploads
#                       are tested against besides the embedded v3
DEPS     := gcc libc6-dev git ca-certificates busybox-static skopeo podman runc debootstrap catatonit groovy default-jre-headless bc qemu-user-static binfmt-support docker-registry

export CGO_ENABLED := 1

.PHONY: all build test test-short lint deps demo clean bench bench-cache dist dist-deps builder-image fuzz race

all: build

# -trimpath as make dist builds, so that both share Go's build cache.
build:
	$(GO) build -trimpath -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/agentforge

# Installs missing system packages (needs root and apt-get).
deps:
	@missing=""; for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@[ -e /proc/sys/fs/binfmt_misc/status ] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc || \
		echo "deps: warning: cannot mount binfmt_misc: foreign-platform builds will fail" >&2
	@case $$(dpkg --print-architecture) in amd64) h=qemu-aarch64;; arm64) h=qemu-x86_64;; *) h=;; esac; \
	[ -z "$$h" ] || [ -e /proc/sys/fs/binfmt_misc/$$h ] || update-binfmts --enable $$h || \
		echo "deps: warning: cannot enable the $$h binfmt handler: foreign-platform builds will fail" >&2

# The whole suite. Build tests run buildah in-process and need root.
test: deps lint bin/cosign
	$(GO) test -tags "$(TAGS)" -count=1 -timeout 30m ./...
	$(MAKE) race
	$(MAKE) fuzz

# The race detector over agentforge's own concurrency: the registry client,
# attachments, registry-to-registry copies (mirror, index) and uploads that
# go on after a break (from a registry and an OCI layout). Publishing
# from local storage is left out: c/storage v1.61's lockfile races with
# itself under concurrent readers (podman-container-tools/container-libs#657,
# fixed in go.podman.io/storage v1.65, which needs a newer buildah).
race:
	$(GO) test -tags "$(TAGS)" -race -short -count=1 ./builder/oci/remote/ ./publisher/attachments/
	$(GO) test -tags "$(TAGS)" -race -short -count=1 -run 'TestMirror|TestIndex|TestUpload|TestBlobReader' ./publisher/

# The parsers of what registries answer, and the splice that keeps an
# admin's JCasC or Helm values lines, fuzzed for FUZZTIME each (their
# seeds, and any input a run finds failing, which go test writes under the
# package's testdata/fuzz, run in every `go test` as ordinary tests). Each
# target is one `go test -fuzz` (Go fuzzes one target at a time); the first
# run builds an instrumented copy of the dependencies, later runs reuse it.
FUZZTIME ?= 10s
FUZZ     := builder/oci/remote:FuzzParseReferrersIndex builder/oci/remote:FuzzParseChallenge \
            publisher/attachments:FuzzTagSchemaIndex publisher/sign:FuzzDSSEEnvelope \
            jenkins:FuzzKeepBlankLines
fuzz:
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($(FUZZTIME))"; \
		$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

# The fast tier: every test but image builds, Groovy and cosign (go test
# -short; they skip themselves and say so). Its cross-checks still run
# skopeo, and the demo's stand-in jar a JRE (make deps installs both).
test-short: lint
	$(GO) test -tags "$(TAGS)" -short -count=1 -timeout 5m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

# The whole release, offline, on embedded services (see README.md), then
# agentforge's own builder image from `make dist`'s binary, and one build
# run inside it as a pod runs it.
# It needs make dist's binary for this machine's platform only.
demo: deps build
	$(MAKE) --no-print-directory dist DIST_PLATFORMS=linux/$(HOST_ARCH)
	$(BIN) demo --dist $(DIST)

clean:
	rm -rf bin .demo $(DIST)

# Release binaries (make dist): one per platform in $(DIST), named
# agentforge-linux-ARCH, plus SHA256SUMS over them and SHA256SUMS.sig, a
# signature over that file in cosign's sign-blob format (cosign verify-blob
# --key PUB --signature SHA256SUMS.sig --insecure-ignore-tlog=true SHA256SUMS,
# or agentforge verify-blob). cgo stays on (buildah's RUN needs it): a
# foreign architecture is cross-compiled with Debian's cross gcc and its
# libc headers (DIST_DEPS), which takes as long as a native build, where
# compiling under qemu would take many times longer. The binaries link only
# glibc (sqlite is compiled in) and use no symbol newer than GLIBC_2.34:
# they run on Debian 12, Ubuntu 22.04, RHEL 9 and later.
# -trimpath and no symbol table (-s -w): the same commit and toolchain give
# the same bytes. The signing key: SIGN_KEY (cosign format; its passphrase
# in $$COSIGN_PASSWORD), else a development key made once in .dist-key/
# (say so; a release sets SIGN_KEY). SIGN_KEY's public half (.pub beside
# it) checks the signature and is copied to $(DIST)/agentforge.pub.
DIST           := dist
DIST_PLATFORMS := linux/amd64 linux/arm64
HOST_ARCH      := $(shell $(GO) env GOARCH 2>/dev/null)
# The C compiler per target architecture: the host's gcc for its own, a
# Debian cross compiler for the other.
CC_amd64       := $(if $(filter amd64,$(HOST_ARCH)),gcc,x86_64-linux-gnu-gcc)
CC_arm64       := $(if $(filter arm64,$(HOST_ARCH)),gcc,aarch64-linux-gnu-gcc)
# Cross compilers, for the platforms that are not the host's:
#   gcc-aarch64-linux-gnu libc6-dev-arm64-cross  linux/arm64 on amd64 hosts
#   gcc-x86-64-linux-gnu libc6-dev-amd64-cross   linux/amd64 on arm64 hosts
DEPS_amd64     := gcc-x86-64-linux-gnu libc6-dev-amd64-cross
DEPS_arm64     := gcc-aarch64-linux-gnu libc6-dev-arm64-cross
DIST_DEPS      := $(foreach p,$(filter-out linux/$(HOST_ARCH),$(DIST_PLATFORMS)),$(DEPS_$(notdir $(p))))
SIGN_KEY       ?=

dist-deps: deps
	@missing=""; for p in $(DIST_DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

dist: dist-deps build
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@for p in $(DIST_PLATFORMS); do \
		arch=$${p#linux/}; cc=$$(case $$arch in amd64) echo $(CC_amd64);; arm64) echo $(CC_arm64);; esac); \
		echo "dist: $$p with $$cc"; start=$$(date +%s); \
		GOOS=linux GOARCH=$$arch CC=$$cc CGO_ENABLED=1 $(GO) build -trimpath -tags "$(TAGS)" \
			-ldflags "-s -w $(LDFLAGS)" -o $(DIST)/agentforge-linux-$$arch ./cmd/agentforge || exit 1; \
		echo "dist: $$p built in $$(( $$(date +%s) - start )) s"; \
	done
	cd $(DIST) && sha256sum agentforge-linux-* > SHA256SUMS
	@key="$(SIGN_KEY)"; \
	if [ -z "$$key" ]; then \
		key=.dist-key/cosign.key; \
		echo "dist: WARNING: no SIGN_KEY: signing with the development key $$key (a release sets SIGN_KEY=… and COSIGN_PASSWORD)" >&2; \
		[ -f $$key ] || COSIGN_PASSWORD= $(BIN) keygen --prefix .dist-key/cosign >/dev/null || exit 1; \
		export COSIGN_PASSWORD=; \
	fi; \
	$(BIN) sign-blob $(DIST)/SHA256SUMS --sign-key "$$key" --output-signature $(DIST)/SHA256SUMS.sig >/dev/null && \
	cp "$${key%.key}.pub" $(DIST)/agentforge.pub && \
	$(BIN) verify-blob $(DIST)/SHA256SUMS --key $(DIST)/agentforge.pub --signature $(DIST)/SHA256SUMS.sig
	@cat $(DIST)/SHA256SUMS

# Side-by-side timings against crane (Go benchmark, synthetic image, in the
# same run) and, when `make demo` has built it, skopeo and crane on the
# python-agent image (.ci/bench).
bench: build bin/crane
	CRANE=$(CURDIR)/bin/crane $(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchtime 5x -count 3 ./publisher/
	@if bin/agentforge verify localhost/python-agent:0.6.0-rc0 >/dev/null 2>&1; then bash .ci/bench; else echo "bench: no python-agent image (make demo first) for the skopeo/crane table"; fi

# The registry layer cache on images/python-agent as the demo builds it
# (offline stand-ins): a cold build, the same build in a new store from the
# cache (goal: <= 60 s, same digest), and a CPython bump (only the CPython
# step and those after it run). About 10 to 25 minutes; build output in
# $$AGENTFORGE_BENCH_DIR/bench.log (see cmd/agentforge/cache_bench_test.go).
bench-cache: deps
	$(GO) test -tags "$(TAGS)" -run '^$$' -bench LayerCache -benchtime 1x -timeout 120m ./cmd/agentforge/

bin/crane:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/google/go-containerregistry/cmd/crane@v0.22.1

# The real cosign, which the signing tests run against what agentforge signs
# (publisher/sign/signtest; the version is signtest.Version). A cold build
# takes about 15 minutes.
COSIGN_VERSION := v2.6.2
bin/cosign:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_VERSION)

# agentforge's own builder image (images/agentforge) from make dist's
# binaries: every DIST_PLATFORMS platform in one local list (a foreign one
# under qemu), tagged with the version, with each platform's SBOM in
# $(DIST). Publish it signed with: agentforge publish
# localhost/agentforge:VERSION --to REPO --sign-key KEY (see README).
# BUILDER_FLAGS adds build flags, e.g. --set base.image=… where Docker Hub
# is out of reach, --set base.digest=sha256:… to pin the base.
BUILDER_FLAGS ?=
builder-image: dist
	$(BIN) build images/agentforge --set dist=file://$(CURDIR)/$(DIST) --set version=$(patsubst v%,%,$(VERSION)) \
		$(foreach p,$(DIST_PLATFORMS),--platform $(p)) --sbom $(DIST)/agentforge-image.spdx.json $(BUILDER_FLAGS)
