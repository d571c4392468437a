# agentforge. `make demo` and `make test` set up what they need on a fresh
# Debian machine (as root) and run; see README.md.
GO       ?= go
TAGS     := containers_image_openpgp exclude_graphdriver_btrfs exclude_graphdriver_devicemapper
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -X main.version=$(VERSION)
BIN      := bin/agentforge
# System packages the tests and the demo use (Debian names).
DEPS     := busybox-static skopeo podman debootstrap groovy default-jre-headless git ca-certificates bc

export CGO_ENABLED := 1

.PHONY: all build test test-short lint deps demo clean bench

all: build

build:
	$(GO) build -tags "$(TAGS)" -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/agentforge

# Installs missing system packages (needs root and apt-get).
deps:
	@missing=""; for p in $(DEPS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# The whole suite. Build tests run buildah in-process and need root.
test: deps lint
	$(GO) test -tags "$(TAGS)" -count=1 -timeout 30m ./...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet -tags "$(TAGS)" ./...

# The whole release, offline, on embedded services (see README.md).
demo: deps build
	$(BIN) demo

clean:
	rm -rf bin .demo

# Side-by-side timings against skopeo and crane (needs the demo image).
bench: build
	bash .ci/bench
