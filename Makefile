# gatecheck — see README.md.
GO       ?= go
BIN      ?= bin/gatecheck
PKGS     ?= ./...
BENCH    ?= .
BENCHTIME ?= 2s
FUZZTIME ?= 100000x

TARGET   ?= sim
OUT      ?= _out
# External targets: GATEWAY_URL (required), MANAGEMENT_URL, ORG, ADMIN_TOKEN, CREDENTIALS.
# The kind target (needs Docker or Podman): KEEP=1 keeps the cluster, NODE_IMAGE picks the node image.
CONFORMANCE_ARGS = --target $(TARGET) \
	$(if $(GATEWAY_URL),--gateway-url '$(GATEWAY_URL)') \
	$(if $(MANAGEMENT_URL),--management-url '$(MANAGEMENT_URL)') \
	$(if $(ORG),--org '$(ORG)') \
	$(if $(ADMIN_TOKEN),--admin-token '$(ADMIN_TOKEN)') \
	$(if $(CREDENTIALS),--credentials '$(CREDENTIALS)') \
	$(if $(KEEP),--keep) $(if $(NODE_IMAGE),--node-image '$(NODE_IMAGE)') \
	--report-output $(OUT)/report.yaml --junit $(OUT)/junit.xml --summary $(OUT)/summary.md

.PHONY: all build test race bench fuzz lint sandbox conformance clean

all: build

build: ## build the gatecheck binary into bin/
	CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN) ./cmd/gatecheck

test: ## vet and run every test (the CI command)
	$(GO) vet $(PKGS)
	$(GO) test -count=1 $(PKGS)

race: ## the tests under the race detector
	$(GO) test -race -count=1 $(PKGS)

bench: ## benchmarks: the gateway's and the runtime's added latency, p50/p99
	$(GO) test -run='^$$' -bench='$(BENCH)' -benchtime=$(BENCHTIME) $(PKGS)

fuzz: ## run every fuzz target for FUZZTIME each
	@set -e; for pkg in $$($(GO) list $(PKGS)); do \
	  for f in $$($(GO) test -list='^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg; \
	  done; \
	done

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

conformance: ## the conformance suite (TARGET=sim|kind|external); reports in _out/
	@mkdir -p $(OUT)
	$(GO) run ./cmd/gatecheck conformance $(CONFORMANCE_ARGS)

sandbox: ## run the sandbox: gateway on 127.0.0.1:8080
	$(GO) run ./cmd/gatecheck sandbox up

clean:
	rm -rf bin _out
