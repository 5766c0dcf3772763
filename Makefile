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
	@# Includes check-rollback on the project's own migrations (tests/it/rollback.rs) and drift on
	@# every drizzle-kit fixture history (tests/it/drift.rs), each against a real PostgreSQL.
	$(CARGO) test --locked --all-targets
	@# Keeps every benchmark working (small sizes, debug build); fails only if one breaks.
	$(MAKE) bench QUICK=1
	cfn-lint template.yaml
	@# The deployable artifact, built as sam build does (CargoLambda.toml adds the
	@# vendored-openssl feature and puts it in target/lambda); zig links for arm64.
	$(CARGO) lambda build --release --arm64 --locked --features vendored-openssl --bin wishlist-migrator-lambda
	@ls -l target/lambda/wishlist-migrator-lambda/bootstrap
	@# Further checks (drizzle peer tests, ...) go below.

demo: bootstrap
	$(CARGO) build --locked --bins
	scripts/demo.sh

bench: bootstrap
	QUICK=$(QUICK) scripts/bench.sh
