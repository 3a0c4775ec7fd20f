# Entry points for people and CI. Each target is one command; the scripts say what they do.
.PHONY: test lint bench fixtures

## test: every test (what CI runs)
test:
	./scripts/test

## lint: formatting and clippy, as CI checks them
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## bench: the decoder and a full batch against their floors, then the binary end to end against moto (figures for BENCHMARKS.md)
bench:
	cargo bench -p das-processor --bench decode
	cargo bench -p das-processor --bench batch
	./scripts/bench-processor

## fixtures: regenerate the Encryption SDK fixtures with the Python SDK (commit the result)
fixtures:
	tests/fixtures/esdk/generate
