# The two commands of the README: `make demo` and `make test`. Both install what
# they need first (virtual environment, pinned packages, the broker's jars) and
# are safe to run again.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
LIBS   := .cache/kafka/libs
# The test suite's own broker, apart from the demo's (see tests/conftest.py).
TEST_BROKER := CLINICFLOW_LOCAL_KAFKA_DIR=var/test/kafka CLINICFLOW_LOCAL_KAFKA_PORT=19392
TEST_POSTGRES := CLINICFLOW_LOCAL_POSTGRES_PORT=15442 CLINICFLOW_LOCAL_POSTGRES_DIR=var/test/postgres CLINICFLOW_POSTGRES_PASSWORD=clinicflow-test-catalog

.PHONY: setup lint test demo kafka-up kafka-down prefect-down postgres-up postgres-down test-broker-down test-postgres-down clean bench-validate bench-landing bench bench-peers

$(STAMP): pyproject.toml constraints.txt
	@echo "==> installing Python packages into $(VENV) (pinned by constraints.txt)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test]"
	@touch $@

# Rebuilt from scratch when the pom changes, so two Kafka versions never share a classpath.
$(LIBS)/.complete: infra/kafka/pom.xml
	@echo "==> fetching the Kafka broker jars with Maven into $(LIBS)"
	@command -v java >/dev/null || { echo "java not found: apt-get install -y openjdk-17-jre-headless"; exit 2; }
	@command -v mvn >/dev/null || { echo "mvn not found: apt-get install -y maven"; exit 2; }
	rm -rf $(LIBS)
	mvn -q -B -f infra/kafka/pom.xml dependency:copy-dependencies -DoutputDirectory=$(CURDIR)/$(LIBS)
	@touch $@

# A random pseudonym secret for local use; a real deployment sets its own.
# Only its owner may read it: the secret keys every analyst-facing pseudonym.
.env:
	@umask 077; echo "CLINICFLOW_PSEUDONYM_SECRET=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(32))')" > $@
	@echo "==> wrote .env with a fresh CLINICFLOW_PSEUDONYM_SECRET"

setup: $(STAMP) $(LIBS)/.complete .env
	@chmod 600 .env
	@grep -q '^CLINICFLOW_POSTGRES_PASSWORD=' .env || { \
	  echo "CLINICFLOW_POSTGRES_PASSWORD=$$($(PYTHON) -c 'import secrets; print(secrets.token_hex(24))')" >> .env; \
	  echo "==> added a fresh CLINICFLOW_POSTGRES_PASSWORD to .env (the local catalog server's role)"; }
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null || \
	  echo "note: PostgreSQL is not installed; \`clinicflow postgres up\` needs it: apt-get install -y postgresql"

postgres-up: setup
	$(BIN)/clinicflow postgres up

postgres-down:
	-$(BIN)/clinicflow postgres down

# Structure first (seconds): lint, format, the layer contracts in pyproject.toml; then the suite.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/pytest

demo: setup
	$(BIN)/clinicflow demo

kafka-up: setup
	$(BIN)/clinicflow kafka up

kafka-down:
	-$(BIN)/clinicflow kafka down

prefect-down:
	-$(BIN)/python -c "from clinicflow.prefect_server import PrefectServer; PrefectServer().stop()"

test-broker-down:
	-$(TEST_BROKER) $(BIN)/clinicflow kafka down

# The integration suite's catalog server (tests/conftest.py: port, folder and password).
test-postgres-down:
	-$(TEST_POSTGRES) $(BIN)/clinicflow postgres down

clean: kafka-down test-broker-down test-postgres-down prefect-down postgres-down
	rm -rf $(VENV) $(PEERS) .cache var

bench-validate: setup
	$(BIN)/python -m benchmarks.validate_bench

# Every statement of the landing path timed, no broker: where a batch's time goes.
bench-landing: setup
	$(BIN)/python -m benchmarks.landing_profile $(BENCH_ARGS)

# The peers clinicflow is measured against, in an environment of their own (reasons in
# benchmarks/peers/requirements.txt): the product's install stays lean.
PEERS := .venv-peers
$(PEERS)/.installed: benchmarks/peers/requirements.txt
	@echo "==> installing the benchmark's peers (dlt, quixstreams, ...) into $(PEERS)"
	$(PYTHON) -m venv $(PEERS)
	$(PEERS)/bin/pip install -q --upgrade pip
	$(PEERS)/bin/pip install -q -r benchmarks/peers/requirements.txt
	@touch $@

# clinicflow against the loaders a user would pick instead: same events, 3 interleaved rounds.
bench-peers: setup $(PEERS)/.installed
	$(BIN)/clinicflow kafka up
	$(BIN)/python -m benchmarks.peers.run $(PEERS_ARGS)

# One command, default 200,000 events; needs the broker (started here if it is the local one).
bench: setup $(PEERS)/.installed
	$(BIN)/clinicflow kafka up
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)
	$(BIN)/python -m benchmarks.peers.run $(PEERS_ARGS)
