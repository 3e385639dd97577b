"""Kafka's jars for the local broker: resolved with Maven into a per-user cache, never the clone.

Owns the pinned Kafka version, the cache and the install lock; `devstack.kafka` runs the broker.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
from pathlib import Path

KAFKA_VERSION = "3.9.1"
POM_TEMPLATE = Path(__file__).resolve().parent.parent / "scripts" / "kafka" / "pom.xml"
_COMPLETE_MARKER = ".complete"


class KafkaBrokerError(RuntimeError):
    """The broker could not be installed, started or stopped; the message carries the evidence."""


def cache_root() -> Path:
    """Where installs are cached: ``${XDG_CACHE_HOME:-~/.cache}/bytebot-chaos/kafka``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "bytebot-chaos" / "kafka"


def install(version: str = KAFKA_VERSION) -> Path:
    """Resolve Kafka ``version``'s jars with Maven into the cache and return the ``lib`` folder.

    Skipped when a complete install is already there. A marker written last tells a complete
    install from a half-done one, which is redone. A file lock keeps parallel installs apart.
    """
    home = cache_root() / version
    lib = home / "lib"
    if (home / _COMPLETE_MARKER).exists():
        return lib
    home.mkdir(parents=True, exist_ok=True)
    with open(home.parent / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / _COMPLETE_MARKER).exists():  # another process finished while we waited
            return lib
        mvn = shutil.which("mvn")
        if mvn is None:
            raise KafkaBrokerError("mvn not found on PATH; it resolves Kafka's jars")
        pom, n = re.subn(
            r"<kafka\.version>[^<]*</kafka\.version>",
            f"<kafka.version>{version}</kafka.version>",
            POM_TEMPLATE.read_text(),
        )
        if n != 1:
            raise KafkaBrokerError(f"{POM_TEMPLATE} has no single <kafka.version> property")
        (home / "pom.xml").write_text(pom)
        shutil.rmtree(lib, ignore_errors=True)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-Dstyle.color=never",
            "-f",
            str(home / "pom.xml"),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={lib}",
        ]
        done = subprocess.run(cmd, cwd=home, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not any(lib.glob("kafka_*.jar")):
            raise KafkaBrokerError(
                f"mvn failed to resolve Kafka {version} (exit {done.returncode}):\n"
                f"{done.stdout}{done.stderr}"
            )
        (home / _COMPLETE_MARKER).write_text(f"{version}\n")
    return lib
