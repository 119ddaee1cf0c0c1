"""A real single-node Apache Kafka 4.x broker (KRaft) run from Maven jars, no Docker.

One process is both broker and controller, listening on 127.0.0.1 only. Its
config, data and logs live in one folder; the folder survives restarts, so a
broker killed with SIGKILL comes back with its data.
"""

from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient
from kafka.errors import KafkaError, TopicAlreadyExistsError

from connectors.exceptions import BrokerSetupError

REPO_ROOT = Path(__file__).resolve().parents[1]
POM = REPO_ROOT / "infra" / "kafka" / "pom.xml"

LOG4J2 = """\
status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = {logs}/server.log
appender.file.filePattern = {logs}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.apache.name = org.apache.kafka
logger.apache.level = WARN
"""


@dataclass(frozen=True)
class BrokerStatus:
    """What `clinicflow kafka status` reports."""

    running: bool
    pid: int | None
    bootstrap: str
    healthy: bool
    detail: str


def ensure_jars(libs_dir: Path, progress=print) -> None:
    """Copy the broker's jars from Maven Central into libs_dir, once."""
    if libs_dir.is_dir() and any(libs_dir.glob("kafka_2.13-*.jar")):
        return
    mvn = shutil.which("mvn")
    if mvn is None:
        raise BrokerSetupError(
            "Maven (`mvn`) is not on PATH; install it (apt-get install maven) or set "
            "CLINICFLOW_KAFKA_BOOTSTRAP_SERVERS to use your own cluster"
        )
    progress(f"fetching Kafka broker jars with Maven into {libs_dir} (once) ...")
    cmd = [mvn, "-q", "-B", "-f", str(POM), "dependency:copy-dependencies", f"-DoutputDirectory={libs_dir.resolve()}"]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise BrokerSetupError(
            f"`{' '.join(cmd)}` failed (exit {done.returncode}); Maven said:\n"
            f"{(done.stdout + done.stderr)[-2000:]}\nfix the network or Maven settings and retry"
        )


def _cluster_id() -> str:
    # Kafka's Uuid.toString(): URL-safe base64 of 16 random bytes, unpadded. Like Kafka's own
    # randomUuid(), never start with '-': the storage tool would read it as an option.
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalBroker:
    """Configure, format, start, probe and stop one local KRaft broker."""

    def __init__(
        self, home: Path, port: int, libs_dir: Path, heap_mb: int = 512, sasl_users: dict[str, str] | None = None
    ):
        """sasl_users: serve SASL_PLAINTEXT with PLAIN for these users instead of PLAINTEXT (the first one
        is the broker's own and the readiness probe's)."""
        self.sasl_users = sasl_users
        self.home = home.resolve()
        self.port = port
        self.libs_dir = libs_dir.resolve()
        self.heap_mb = heap_mb
        self.config = self.home / "server.properties"
        self.data = self.home / "data"
        self.logs = self.home / "logs"
        self.pidfile = self.home / "broker.pid"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    # --- setup ------------------------------------------------------------
    def write_config(self) -> None:
        """(Re)write server.properties and log4j2.properties for this port and folder."""
        self.logs.mkdir(parents=True, exist_ok=True)
        self.data.mkdir(parents=True, exist_ok=True)
        ctl = self.port + 1
        proto = "SASL_PLAINTEXT" if self.sasl_users else "PLAINTEXT"
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"127.0.0.1:{ctl}",
            "listeners": f"{proto}://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{ctl}",
            "advertised.listeners": f"{proto}://127.0.0.1:{self.port}",
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": proto,
            "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{proto}:{proto}",
            **self._sasl_props(),
            "log.dirs": str(self.data),
            "num.partitions": "3",
            # A misspelt topic must fail loudly, not appear empty.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "3",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            # Ingest workers may ask for a session as short as 2 s (a dead worker replaced sooner).
            "group.min.session.timeout.ms": "2000",
            "log.retention.hours": "168",
            "log.segment.bytes": "67108864",
        }
        self.config.write_text("".join(f"{k}={v}\n" for k, v in props.items()))
        (self.home / "log4j2.properties").write_text(LOG4J2.format(logs=self.logs))

    def _sasl_props(self) -> dict[str, str]:
        if not self.sasl_users:
            return {}
        (admin, password), *_ = self.sasl_users.items()
        users = " ".join(f'user_{u}="{p}"' for u, p in self.sasl_users.items())
        jaas = (
            f'org.apache.kafka.common.security.plain.PlainLoginModule required username="{admin}" '
            f'password="{password}" {users};'
        )
        return {
            "sasl.enabled.mechanisms": "PLAIN",
            "sasl.mechanism.inter.broker.protocol": "PLAIN",
            "listener.name.sasl_plaintext.plain.sasl.jaas.config": jaas,
        }

    def client_config(self) -> dict:
        """What a client needs besides the bootstrap address (the first SASL user's credentials)."""
        if not self.sasl_users:
            return {}
        (user, password), *_ = self.sasl_users.items()
        return {
            "security_protocol": "SASL_PLAINTEXT",
            "sasl_mechanism": "PLAIN",
            "sasl_plain_username": user,
            "sasl_plain_password": password,
        }

    def _java(self) -> list[str]:
        java = shutil.which("java")
        if java is None:
            raise BrokerSetupError(
                "java is not on PATH; install a Java 17+ runtime (apt-get install openjdk-17-jre-headless)"
            )
        return [java, "-cp", f"{self.libs_dir}/*", f"-Dlog4j2.configurationFile={self.home / 'log4j2.properties'}"]

    def format_storage(self) -> bool:
        """Format the KRaft storage once; returns False when it was already formatted."""
        if (self.data / "meta.properties").exists():
            return False
        cmd = [
            *self._java(),
            "-Xmx256m",
            "kafka.tools.StorageTool",
            "format",
            "--standalone",
            "--ignore-formatted",
            "-t",
            _cluster_id(),
            "-c",
            str(self.config),
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise BrokerSetupError(
                f"formatting broker storage in {self.data} failed: "
                f"{(done.stdout + done.stderr)[-1500:]}\nremove {self.data} and retry"
            )
        return True

    # --- process ----------------------------------------------------------
    def pid(self) -> int | None:
        """The broker's pid when it is running; clears a stale pid file."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _pid_alive(pid) and self._is_our_broker(pid):
            return pid
        self.pidfile.unlink(missing_ok=True)
        return None

    def _is_our_broker(self, pid: int) -> bool:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            return False
        return "kafka.Kafka" in cmdline and str(self.config) in cmdline

    def start(self, timeout_s: float = 90, progress=print) -> float:
        """Start the broker if it is not running and wait until it serves clients; returns seconds taken."""
        t0 = time.monotonic()
        if self.pid() is not None:
            wait_until_healthy(self.bootstrap, timeout_s, client_config=self.client_config())
            return time.monotonic() - t0
        for port in (self.port, self.port + 1):
            if _port_open(port):
                raise BrokerSetupError(
                    f"port {port} on 127.0.0.1 is in use by another process (not the broker in {self.home}); "
                    "stop that process or choose another port with CLINICFLOW_LOCAL_KAFKA_PORT"
                )
        ensure_jars(self.libs_dir, progress)
        self.write_config()
        if self.format_storage():
            progress(f"formatted new KRaft storage in {self.data}")
        self._spawn()
        progress(f"started Kafka broker (pid {self.pid()}) on {self.bootstrap}; waiting until it serves clients ...")
        wait_until_healthy(self.bootstrap, timeout_s, self._check_alive, self.client_config())
        return time.monotonic() - t0

    def _spawn(self) -> None:
        out = open(self.logs / "stdout.log", "ab")
        heap = f"-Xmx{self.heap_mb}m"
        cmd = [
            *self._java(),
            heap,
            f"-Xms{min(self.heap_mb, 256)}m",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            "kafka.Kafka",
            str(self.config),
        ]
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.home
        )
        self.pidfile.write_text(str(proc.pid))
        # Until exec completes, /proc shows the forked Python, not java.
        deadline = time.monotonic() + 5
        while not self._is_our_broker(proc.pid) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)

    def _check_alive(self) -> None:
        if self.pid() is None:
            tail = (self.logs / "stdout.log").read_text(errors="replace")[-1500:]
            raise BrokerSetupError(
                f"the Kafka broker in {self.home} exited during start-up; its output ends:\n"
                f"{tail}\nsee {self.logs}/server.log"
            )

    def stop(self, timeout_s: float = 30) -> bool:
        """Stop the broker cleanly (SIGTERM, then SIGKILL after timeout_s); False if it was not running."""
        pid = self.pid()
        if pid is None:
            return False
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and _pid_alive(pid):
            _reap(pid)
            time.sleep(0.2)
        if _pid_alive(pid):
            os.kill(pid, signal.SIGKILL)
            _reap(pid)
        self.pidfile.unlink(missing_ok=True)
        return True

    def kill(self) -> None:
        """SIGKILL the broker, as a crash would (for fault-injection tests)."""
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            while _pid_alive(pid):
                _reap(pid)
                time.sleep(0.05)

    def status(self) -> BrokerStatus:
        pid = self.pid()
        if pid is None:
            return BrokerStatus(False, None, self.bootstrap, False, "not running")
        healthy, detail = probe(self.bootstrap, client_config=self.client_config())
        return BrokerStatus(True, pid, self.bootstrap, healthy, detail)


def _reap(pid: int) -> None:
    # When this process started the broker, it must reap the zombie for it to vanish.
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


HEALTH_TOPIC = "__clinicflow_health"


def probe(bootstrap: str, timeout_s: float = 10, client_config: dict | None = None) -> tuple[bool, str]:
    """Produce one message and consume it back: the only proof a broker serves clients."""
    cfg = {
        "bootstrap_servers": bootstrap,
        "request_timeout_ms": int(timeout_s * 1000),
        **(client_config or {}),
        "bootstrap_timeout_ms": int(timeout_s * 1000),  # a probe answers within its own time
    }
    try:
        admin = KafkaAdminClient(**cfg)
        try:
            admin.create_topics({HEALTH_TOPIC: {"num_partitions": 1, "replication_factor": 1}}, wait_for_metadata=True)
        except TopicAlreadyExistsError:
            pass
        finally:
            admin.close()
        marker = uuid.uuid4().hex.encode()
        producer = KafkaProducer(**cfg)
        meta = producer.send(HEALTH_TOPIC, marker).get(timeout=timeout_s)
        producer.close()
        consumer = KafkaConsumer(**cfg, enable_auto_commit=False)
        tp = TopicPartition(HEALTH_TOPIC, meta.partition)
        consumer.assign([tp])
        consumer.seek(tp, meta.offset)
        records = consumer.poll(timeout_ms=int(timeout_s * 1000)).get(tp, [])
        consumer.close()
    except (KafkaError, OSError) as e:
        return False, f"{type(e).__name__}: {e}"
    if any(r.value == marker for r in records):
        return True, "produce and consume round trip ok"
    return False, "produced a probe message but could not read it back"


def wait_until_healthy(bootstrap: str, timeout_s: float, check=lambda: None, client_config: dict | None = None) -> None:
    """Poll the probe until it passes, calling check() between tries (to notice a dead process)."""
    deadline = time.monotonic() + timeout_s
    detail = "no answer"
    while time.monotonic() < deadline:
        check()
        if _port_open(int(bootstrap.rsplit(":", 1)[1])):
            ok, detail = probe(bootstrap, min(10, max(1, deadline - time.monotonic())), client_config)
            if ok:
                return
        time.sleep(0.5)
    raise BrokerSetupError(
        f"the Kafka broker at {bootstrap} did not serve clients within {timeout_s:.0f}s "
        f"(last probe: {detail}); see its logs and retry `clinicflow kafka up`"
    )


def from_settings(settings) -> LocalBroker:
    """The local broker that the settings describe."""
    return LocalBroker(
        settings.local_kafka_dir, settings.local_kafka_port, settings.kafka_libs_dir, settings.local_kafka_heap_mb
    )
