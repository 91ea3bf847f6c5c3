"""Start a single-node KRaft Kafka broker (broker + controller in one JVM) on loopback.

Intuition: Kafka is a set of jars and a Java process. The jars come from Maven Central through
the machine's Maven (`infra/kafka/pom.xml`), once, into a cache outside the repository; each
broker gets a fresh temporary log directory formatted for KRaft, free loopback ports, and runs
until stopped. The broker is ready when it answers a metadata request, not when the process
starts.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from types import TracebackType

from streams.errors import ParcoursError

KAFKA_VERSION = "4.1.1"
INFRA = Path(__file__).resolve().parents[2] / "infra" / "kafka"


class DevKafkaError(ParcoursError):
    """Base of the local-broker exceptions (missing Java/Maven, download or start failures)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "parcours" / f"kafka-{KAFKA_VERSION}"
    return Path(os.environ.get("PARCOURS_KAFKA_CACHE", default))


def _require_tools() -> None:
    missing = [tool for tool in ("java", "mvn") if shutil.which(tool) is None]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-q"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(
            ["apt-get", "install", "-y", "-q", "openjdk-17-jre-headless", "maven"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return
    raise DevKafkaError(
        f"{' and '.join(missing)} not found: install Java 17 and Maven "
        "(e.g. apt-get install openjdk-17-jre-headless maven) to run a local Kafka broker"
    )


def ensure_kafka_libs() -> Path:
    """Kafka's jars in the cache, downloaded once (safe against concurrent first runs)."""
    libs = cache_dir() / "libs"
    marker = libs / ".complete"
    if marker.exists():
        return libs
    _require_tools()
    libs.parent.mkdir(parents=True, exist_ok=True)
    with open(libs.parent / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists():
            return libs
        with tempfile.TemporaryDirectory() as work:
            shutil.copy(INFRA / "pom.xml", Path(work) / "pom.xml")
            result = subprocess.run(
                [
                    "mvn",
                    "-B",
                    "-q",
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={libs}",
                    "-DincludeScope=runtime",
                ],
                cwd=work,
                capture_output=True,
                text=True,
            )
        if result.returncode != 0:
            raise DevKafkaError(
                f"fetching Kafka {KAFKA_VERSION} with Maven failed:\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            )
        marker.touch()
    return libs


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cluster_id() -> str:
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


class LocalKafka:
    """One broker+controller on 127.0.0.1. Use as a context manager or start()/stop()."""

    def __init__(self, *, partitions: int = 4, heap: str = "512m") -> None:
        self.partitions = partitions
        self.heap = heap
        self.workdir: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def bootstrap(self) -> str:
        if not self.port:
            raise DevKafkaError("the broker is not started")
        return f"127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 120) -> str:
        libs = ensure_kafka_libs()
        self.workdir = Path(tempfile.mkdtemp(prefix="parcours-kafka-"))
        self.port, controller = _free_port(), _free_port()
        config = self.workdir / "server.properties"
        config.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@127.0.0.1:{controller}",
                    f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{controller}",
                    f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
                    "controller.listener.names=CONTROLLER",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    "inter.broker.listener.name=PLAINTEXT",
                    f"log.dirs={self.workdir / 'data'}",
                    f"num.partitions={self.partitions}",
                    "auto.create.topics.enable=true",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=4",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "share.coordinator.state.topic.replication.factor=1",
                    "share.coordinator.state.topic.min.isr=1",
                    "group.initial.rebalance.delay.ms=0",
                    "log.flush.interval.messages=1000000",
                    "",
                ]
            )
        )
        classpath = f"{libs}/*"
        log4j = self._log4j()
        fmt = subprocess.run(
            [
                "java",
                *log4j,
                "-cp",
                classpath,
                "kafka.tools.StorageTool",
                "format",
                "-t",
                _cluster_id(),
                "-c",
                str(config),
                "--ignore-formatted",
            ],
            capture_output=True,
            text=True,
        )
        if fmt.returncode != 0:
            raise DevKafkaError(f"formatting the KRaft log dir failed: {fmt.stdout}{fmt.stderr}")
        self._launch(classpath, log4j, config)
        self._wait_ready(timeout_s)
        return self.bootstrap

    def restart(self, timeout_s: float = 120) -> float:
        """Stop the broker (SIGTERM, as an orchestrator would) and start it again on the same
        ports and log directory: topics, offsets and committed positions survive, clients see
        the broker go away and come back. Returns how long it was unreachable (s)."""
        if self.process is None or self.workdir is None:
            raise DevKafkaError("the broker is not started")
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(60)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        config = self.workdir / "server.properties"
        self._launch(f"{ensure_kafka_libs()}/*", self._log4j(), config)
        self._wait_ready(timeout_s)
        return time.monotonic() - started

    def _log4j(self) -> list[str]:
        return [
            f"-Dlog4j2.configurationFile={INFRA / 'log4j2.properties'}",
            f"-Dparcours.kafka.logdir={self.workdir}",
        ]

    def _launch(self, classpath: str, log4j: list[str], config: Path) -> None:
        if self.workdir is None:
            raise DevKafkaError("the broker has no log directory")
        log = open(self.workdir / "stdout.log", "ab")  # noqa: SIM115 - lives as long as the broker
        self.process = subprocess.Popen(
            [
                "java",
                f"-Xmx{self.heap}",
                "-Xms128m",
                "-XX:+UseSerialGC",
                *log4j,
                "-cp",
                classpath,
                "kafka.Kafka",
                str(config),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _wait_ready(self, timeout_s: float) -> None:
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout_s
        # log_level 0: the refused connections while the JVM starts are expected, not news
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 0})
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise DevKafkaError(
                    f"the broker exited with {self.process.returncode}; see {self.workdir}/stdout.log and server.log"
                )
            try:
                metadata = admin.list_topics(timeout=2)
                if metadata.brokers:
                    return
            except Exception:
                time.sleep(0.5)
        self.stop()
        raise DevKafkaError(f"the broker did not answer within {timeout_s:.0f}s")

    def stop(self, timeout_s: float = 20) -> None:
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.process = None
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self) -> LocalKafka:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
