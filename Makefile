# Outside the clone so a fresh checkout (and CI) can reuse one build cache;
# CI may point it elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/wishlist-migrator/target
# Tools installed by bootstrap (cfn-lint, cargo-lambda, moto_server, zig) come first.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

CARGO ?= cargo

.PHONY: bootstrap test demo bench

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	$(CARGO) test --locked --all-targets
	@# Further checks (cfn-lint on the template, drizzle peer tests, ...) go below.

demo: bootstrap
	$(CARGO) build --locked --bins
	scripts/demo.sh

bench: bootstrap
	@if [ -x scripts/bench.sh ]; then scripts/bench.sh; else echo "bench: no scripts/bench.sh yet"; fi
