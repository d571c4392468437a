# agentforge. `make demo` and `make test` set up what they need on a fresh
# Debian machine (as root) and run; see README.md.
GO       ?= go
TAGS     := containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
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
#   groovy default-jre-headless  the Jenkins emulator runs the Groovy scripts
#   bc                  .ci/bench arithmetic
#   qemu-user-static binfmt-support  foreign-platform builds (build --platform
#                       linux/arm64 on amd64, and back); deps also mounts
#                       binfmt_misc and enables the handlers
DEPS     := gcc libc6-dev git ca-certificates busybox-static skopeo podman runc debootstrap groovy default-jre-headless bc qemu-user-static binfmt-support

export CGO_ENABLED := 1

.PHONY: all build test test-short lint deps demo clean bench fuzz

all: build

build:
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/agentforge

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
	$(MAKE) fuzz

# The parsers of what registries answer, fuzzed for FUZZTIME each (their
# seeds, and any input a run finds failing, which go test writes under the
# package's testdata/fuzz, run in every `go test` as ordinary tests). Each
# target is one `go test -fuzz` (Go fuzzes one target at a time); the first
# run builds an instrumented copy of the dependencies, later runs reuse it.
FUZZTIME ?= 10s
FUZZ     := builder/oci/remote:FuzzParseReferrersIndex builder/oci/remote:FuzzParseChallenge \
            publisher/attachments:FuzzTagSchemaIndex publisher/sign:FuzzDSSEEnvelope
fuzz:
	@for t in $(FUZZ); do pkg=$${t%%:*}; fn=$${t##*:}; \
		echo "fuzz $$fn ($(FUZZTIME))"; \
		$(GO) test -tags "$(TAGS)" -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) ./$$pkg || exit 1; \
	done

# The fast tier: every test but image builds, Groovy and cosign (go test
# -short; they skip themselves and say so). It needs no system package.
test-short: lint
	$(GO) test -tags "$(TAGS)" -short -count=1 -timeout 5m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

# The whole release, offline, on embedded services (see README.md).
demo: deps build
	$(BIN) demo

clean:
	rm -rf bin .demo

# Side-by-side timings against crane (Go benchmark, synthetic image, in the
# same run) and, when `make demo` has built it, skopeo and crane on the
# python-agent image (.ci/bench).
bench: build bin/crane
	CRANE=$(CURDIR)/bin/crane $(GO) test -tags "$(TAGS)" -run '^$$' -bench . -benchtime 5x -count 3 ./publisher/
	@if bin/agentforge verify localhost/python-agent:0.6.0-rc0 >/dev/null 2>&1; then bash .ci/bench; else echo "bench: no python-agent image (make demo first) for the skopeo/crane table"; fi

bin/crane:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/google/go-containerregistry/cmd/crane@v0.22.1

# The real cosign, which the signing tests run against what agentforge signs
# (publisher/sign/signtest; the version is signtest.Version). A cold build
# takes about 15 minutes.
COSIGN_VERSION := v2.6.2
bin/cosign:
	GOBIN=$(CURDIR)/bin $(GO) install github.com/sigstore/cosign/v2/cmd/cosign@$(COSIGN_VERSION)
