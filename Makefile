# Outside the clone so a fresh checkout (and CI) can reuse one build cache;
# CI may point it elsewhere.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/wishlist-migrator/target
# Tools installed by bootstrap (cfn-lint, cargo-lambda, moto_server, zig) come first.
export PATH := $(CURDIR)/.venv/bin:$(PATH)

CARGO ?= cargo
# cargo-lambda writes its own path into the zig linker wrappers, and cargo fingerprints the
# linker: run from each clone's .venv, every fresh clone (CI's too) would rebuild the whole arm64
# dependency tree. A copy at a path every clone shares keeps that cache valid.
CARGO_LAMBDA := $(CARGO_TARGET_DIR)/tools/cargo-lambda

.PHONY: bootstrap test lambda demo bench

bootstrap:
	@scripts/bootstrap.sh

test: bootstrap
	@# Style, lints and layering first: cheaper than the tests and independent of them.
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets --locked -- -D warnings
	@# The self-test first: it proves the check can still fail before its pass is believed.
	python3 scripts/check-layers.py --self-test && python3 scripts/check-layers.py
	@# Every relative link in README.md and docs/ resolves, and docs/README.md lists every page.
	python3 scripts/check-links.py --self-test && python3 scripts/check-links.py
	@# bench/: no import cycle, no part importing the driver, every listed part has its run(ctx).
	python3 scripts/check-bench-imports.py --self-test && python3 scripts/check-bench-imports.py
	@# The function's role grants exactly the AWS calls src/ makes (plus the platform's own).
	python3 scripts/check-iam.py --self-test && python3 scripts/check-iam.py
	@# Includes check-rollback on the project's own migrations (tests/it/rollback.rs) and drift on
	@# every drizzle-kit fixture history (tests/it/drift.rs), each against a real PostgreSQL.
	$(CARGO) test --locked --all-targets
	@# Keeps every benchmark working (small sizes); fails only if one breaks. It runs the debug
	@# binaries cargo test just built: a plain cargo build here resolves features without the
	@# dev-dependencies and compile half the dependency tree again.
	BENCH_SKIP_BUILD=1 $(MAKE) bench QUICK=1
	cfn-lint template.yaml
	@# The release workflow, in each shape the template can deploy, through a real ASL validator.
	python3 scripts/check-asl.py
	@# Proves the arm64 Lambda still cross-compiles and links (zig), without release's LTO and
	@# single codegen unit (Cargo.toml's lambda-check profile). Its own lambda dir, so it never
	@# stands in for make lambda's artifact in $(CARGO_TARGET_DIR)/lambda.
	@cmp -s .venv/bin/cargo-lambda $(CARGO_LAMBDA) || install -D -m 755 .venv/bin/cargo-lambda $(CARGO_LAMBDA)
	$(CARGO_LAMBDA) lambda build --profile lambda-check --arm64 --locked --features vendored-openssl \
		--bin wishlist-migrator-lambda --lambda-dir target/lambda-check
	@ls -l target/lambda-check/wishlist-migrator-lambda/bootstrap
	@# Further checks (drizzle peer tests, ...) go below.

lambda: bootstrap
	@# The deployable artifact, built as sam build does (release; CargoLambda.toml adds the
	@# vendored-openssl feature; it lands in $(CARGO_TARGET_DIR)/lambda, where SAM looks for it);
	@# zig links for arm64.
	@cmp -s .venv/bin/cargo-lambda $(CARGO_LAMBDA) || install -D -m 755 .venv/bin/cargo-lambda $(CARGO_LAMBDA)
	$(CARGO_LAMBDA) lambda build --release --arm64 --locked --features vendored-openssl --bin wishlist-migrator-lambda
	@ls -l $(CARGO_TARGET_DIR)/lambda/wishlist-migrator-lambda/bootstrap

demo: bootstrap
	$(CARGO) build --locked --bins
	scripts/demo.sh

bench: bootstrap
	QUICK=$(QUICK) scripts/bench.sh
