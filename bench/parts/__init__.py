"""The benchmark parts, one module each; bench/bench.py lists them in PARTS and calls run(ctx)."""
