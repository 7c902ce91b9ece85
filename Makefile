# Oak's build. `make` builds bin/oak as one static binary (cgo for the
# launch path's nsinit, glibc linked statically; netgo/osusergo keep glibc's
# NSS out of it).
export PATH := $(PATH):/usr/local/go/bin
GO        ?= go
GOFLAGS   := -tags netgo,osusergo -trimpath
LDFLAGS   := -linkmode external -extldflags -static -s -w
DEB_PKGS  := busybox-static runc gcc libc6-dev make e2fsprogs iproute2 iptables podman conmon containerd \
             mmdebstrap musl-tools strace curl postgresql-client redis-tools mariadb-client

.PHONY: all oak plot deps demo test corpus conformance clean

all: oak plot

oak:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS) -ldflags '$(LDFLAGS)' -o bin/oak ./cmd/oak

# plot draws oak bench's figures (oak bench startup --plot); a program of
# its own so that the plotting library stays out of oak.
plot:
	CGO_ENABLED=0 $(GO) build $(GOFLAGS) -o bin/oak-bench-plot ./cmd/oak-bench-plot

# deps installs the Debian packages Oak's demo and tests use.
deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; fi

# demo runs a container from the built-in busybox image.
demo: deps oak
	./bin/oak run --rm demo sh -c 'echo "hello from $$(hostname), pid $$$$, uid $$(id -u) in a container with no ambient authority"; ls /'

# test runs every test: unit tests anywhere, integration tests and the
# corpus of real programs as root (OAK_CORPUS=0 leaves the corpus out).
test: deps
	$(GO) vet ./...
	OAK_CORPUS=$${OAK_CORPUS:-1} $(GO) test -count=1 -timeout 20m ./...

# corpus runs real programs (PostgreSQL, Redis, nginx, MariaDB, Python, Node,
# OpenJDK, Go, busybox, musl) from Debian images under Oak and runc, alone
# and verbosely; `make test` runs it too. The first run on a machine builds
# the images (about 1.5 minutes, cached in /var/cache/oak-corpus).
corpus: deps
	OAK_CORPUS=1 $(GO) test -count=1 -timeout 30m -v ./tests/corpus/

# conformance runs the OCI runtime-tools validation suite against
# oak-runtime and runc, verbosely (docs/conformance.md); `make test` runs
# it too.
conformance: deps
	$(GO) test -count=1 -timeout 15m -v -run TestConformance ./tests/conformance/

clean:
	rm -rf bin
