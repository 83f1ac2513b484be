# Two commands matter: `make run` and `make test` (see README.md).

CARGO ?= cargo
NPM ?= npm

.PHONY: run test web web-deps conformance-deps server test-rust test-web lint chromium

## Build dashboard and server, then start the service in demo mode (prints a login link).
run: web
	$(CARGO) build --release -p cli
	./target/release/optimizer serve --demo

## Every test: Rust on SQLite and PostgreSQL, the API fakes against the vendors' own
## clients, then the dashboard end to end in Chromium.
test: web conformance-deps
	bash scripts/test.sh

web-deps: web/node_modules/.package-lock.json

# `npm install` from the committed lock rather than `npm ci`: this npm writes locks without
# rollup's per-platform optional packages, which `npm ci` then reports as missing. Installing
# from the lock leaves it unchanged (checked in CI).
web/node_modules/.package-lock.json: web/package.json web/package-lock.json
	$(NPM) --prefix web install --no-audit --no-fund

conformance-deps: conformance/node_modules/.package-lock.json

# The vendors' npm clients that drive the testkit fakes, installed from the committed lock
# as web/ is (left unchanged by the install; checked in CI).
conformance/node_modules/.package-lock.json: conformance/package.json conformance/package-lock.json
	$(NPM) --prefix conformance install --no-audit --no-fund

## Build the dashboard into web/dist and print each chunk's gzip size.
web: web-deps
	$(NPM) --prefix web run build

chromium:
	bash scripts/ensure-chromium.sh

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
