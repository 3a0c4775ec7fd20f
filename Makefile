# Entry points for people and CI. Each target is one command; the scripts say what they do.
.PHONY: demo test lint bench fuzz fixtures

## demo: the whole pipeline on the local emulator: up, activity, events in S3, status, tail, down
demo:
	./scripts/demo

## test: every test (what CI runs)
test:
	./scripts/test

## lint: formatting and clippy, as CI checks them
lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

## bench: the decoder and a full batch against their floors, the binary end to end against moto, `up` from nothing, `query` over 1 million events against DuckDB (figures for BENCHMARKS.md)
bench:
	cargo bench -p das-processor --bench decode
	cargo bench -p das-processor --bench batch
	./scripts/bench-processor
	./scripts/bench-up
	./scripts/bench-query

## fuzz: every cargo fuzz target, 10 million runs each from the seed corpus (FUZZING.md)
fuzz:
	./scripts/fuzz

## fixtures: regenerate the Encryption SDK fixtures with the Python SDK (commit the result)
fixtures:
	tests/fixtures/esdk/generate
