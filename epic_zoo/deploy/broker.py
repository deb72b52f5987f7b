"""The MQTT broker beside the central node: a mosquitto process with a generated config.

:class:`Broker` writes a mosquitto config into a working folder, hashes the
principals' passwords with ``mosquitto_passwd -U``, writes the topic ACL
(:func:`acl_text`), starts ``mosquitto -c`` on one port and waits until it
accepts connections. It stops with SIGTERM (mosquitto then saves its
persistence database: queued QoS 1 messages and persistent sessions survive
a :meth:`Broker.restart`).

Security settings: no anonymous clients (``allow_anonymous false``), a
password file (mode 0600), client ids bound to user names
(``use_username_as_clientid true``: one session per principal, so a leaked
password of device ``j`` cannot take over device ``k``'s or the central's
session, publish their last will or wipe their queued messages), an ACL under
which device ``k`` may only publish its data and status topics and read
triggers (see :class:`~epic_zoo.deploy.transport.Topics`), a
``message_size_limit`` just above the largest legitimate message
(:func:`size_limit`), so a client with a leaked password cannot make the
broker queue, or the central receive, large messages, and the queue,
in-flight and persistence settings of :class:`BrokerLimits`.
TLS is a listener option (``certfile``/``keyfile``/``cafile``); see the
deployment README (``epic_zoo/deploy/README.md``, also docs/deployment.md).

Debian/Ubuntu: ``apt-get install -y mosquitto`` provides both binaries.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

from epic_zoo.deploy.security import (
    CENTRAL_USER,
    ENVELOPE_BYTES,
    OPERATOR_USER,
    Credentials,
    write_private,
)
from epic_zoo.deploy.transport import Topics

INSTALL_HINT = (
    "install it with `apt-get install -y mosquitto` (Debian/Ubuntu) or `brew install mosquitto`"
)


class BrokerError(RuntimeError):
    """mosquitto is missing, failed to start, or did not stop."""


@dataclass(frozen=True)
class BrokerLimits:
    """Queue, in-flight and persistence settings of the broker (mosquitto's names).

    Attributes:
        max_queued_messages: messages the broker holds per client beyond the
            in-flight ones (the central's backlog while it is away or busy).
            Beyond it mosquitto drops messages it has already acknowledged,
            so it is large: it bounds memory, not normal traffic.
        max_queued_bytes: the same backlog in bytes (0: no byte limit).
        max_inflight_messages: QoS 1 messages in flight to one client at a time.
        autosave_interval: seconds between saves of the persistence file.
            A broker killed with SIGKILL loses what it acknowledged since its
            last save; the edges send again what they sent in the
            ``resend_s`` (3 s) before a reconnect, which covers an interval
            of 1 s (mosquitto saves once more than a whole interval has
            passed: every 1-2 s). Saving on every change (``autosave_on_changes``) would
            rewrite the whole file per message: a flood queued for an absent
            central would cost the broker time quadratic in its length.
        max_keepalive: longest keepalive a client may ask for, s.
    """

    max_queued_messages: int = 100_000
    max_queued_bytes: int = 256 * 2**20
    max_inflight_messages: int = 100
    autosave_interval: int = 1
    max_keepalive: int = 60

    def __post_init__(self) -> None:
        minimum = {"max_queued_bytes": 0}
        for f in fields(self):
            value = getattr(self, f.name)
            low = minimum.get(f.name, 1)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"broker setting {f.name}={value!r} must be an integer >= {low}")
        if self.max_keepalive > 65535:
            raise ValueError(f"broker setting max_keepalive={self.max_keepalive} must be <= 65535")

    def config_lines(self) -> list[str]:
        """The mosquitto.conf lines of these settings."""
        return [
            f"max_queued_messages {self.max_queued_messages}",
            f"max_queued_bytes {self.max_queued_bytes}",
            f"max_inflight_messages {self.max_inflight_messages}",
            "autosave_on_changes false",
            f"autosave_interval {self.autosave_interval}",
            f"max_keepalive {self.max_keepalive}",
        ]


def find_binary(name: str) -> str:
    """Path of ``mosquitto`` or ``mosquitto_passwd`` (also looked up in /usr/sbin, where Debian puts the broker)."""
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        raise BrokerError(f"{name} not found; {INSTALL_HINT}")
    return path


def size_limit(largest_message: int) -> int:
    """Broker ``message_size_limit`` for a largest legitimate message of ``largest_message`` bytes.

    A margin of 1/8 (at least 1 KiB) above it, so a slightly different
    bundle still passes while anything far larger is refused at the broker.
    """
    largest_message = int(largest_message)
    return largest_message + max(1024, largest_message // 8)


def default_size_limit() -> int:
    """:func:`size_limit` of the largest message any bundle sends: a raw records frame of a full
    OpenFWI record (``[5, 1000, 70]`` float32, the centralised baseline with one device) plus
    the envelope. Pass the bundle's own (``broker --bundle``) for a tighter limit."""
    from epic_zoo.data.geometry import NT, NUM_RECEIVERS, NUM_SOURCES
    from epic_zoo.deploy.records import records_size

    return size_limit(records_size((NUM_SOURCES, NT, NUM_RECEIVERS)) + ENVELOPE_BYTES)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def acl_text(topics: Topics, num_devices: int) -> str:
    """mosquitto ACL: each device writes only its own data/status topics; central and operator their roles."""
    lines = []
    for k in range(num_devices):
        lines += [
            f"user device-{k}",
            f"topic write {topics.data(k)}",
            f"topic write {topics.status(k)}",
            f"topic read {topics.trigger}",
            "",
        ]
    lines += [
        f"user {CENTRAL_USER}",
        f"topic read {topics.data('+')}",
        f"topic read {topics.status('+')}",
        f"topic write {topics.status('central')}",
        f"topic write {topics.done}",
        "",
        f"user {OPERATOR_USER}",
        f"topic write {topics.trigger}",
        f"topic read {topics.done}",
        f"topic read {topics.status('+')}",
        "",
    ]
    return "\n".join(lines)


def write_auth_files(
    folder: str | Path, credentials: Mapping[str, Credentials], topics: Topics, num_devices: int
) -> tuple[Path, Path]:
    """Write the hashed password file and the ACL file; returns ``(passwd, acl)`` paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    passwd = folder / "passwd"
    for cred in credentials.values():
        if ":" in cred.username:
            raise ValueError(f"user name {cred.username!r} must not contain ':'")
    write_private(passwd, "".join(f"{c.username}:{c.password}\n" for c in credentials.values()))
    result = subprocess.run(
        [find_binary("mosquitto_passwd"), "-U", str(passwd)], capture_output=True, text=True
    )
    if result.returncode != 0:
        raise BrokerError(f"mosquitto_passwd -U {passwd} failed: {result.stderr.strip()}")
    os.chmod(passwd, 0o600)  # whatever mosquitto_passwd did with the mode
    acl = folder / "acl"
    acl.write_text(acl_text(topics, num_devices), encoding="utf-8")
    return passwd, acl


class Broker:
    """A mosquitto process bound to ``host:port`` with authentication, ACLs and persistence.

    Args:
        workdir: folder for the config, password, ACL, persistence and log files.
        credentials: principals allowed to connect (from :func:`~epic_zoo.deploy.security.provision`).
        num_devices: devices the ACL covers.
        topics: topic layout (its prefix) the ACL is written for.
        host: address to listen on (loopback by default).
        port: TCP port; default: a free one on ``host``.
        tls: ``{"cafile", "certfile", "keyfile"}`` paths: the listener speaks
            TLS only (clients pass ``ca_certs``); ``None``: plain TCP.
        message_size_limit: largest PUBLISH payload the broker accepts, bytes;
            default :func:`default_size_limit`. With a bundle:
            ``size_limit(max(central.message_limits(manifest)))``. Packets
            (``max_packet_size``) may be 4 KiB longer, for topic and properties.
        limits: queue, in-flight and persistence settings (:class:`BrokerLimits`).

    Use as a context manager, or call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        workdir: str | Path,
        credentials: Mapping[str, Credentials],
        num_devices: int,
        topics: Topics | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        tls: Mapping[str, str | Path] | None = None,
        message_size_limit: int | None = None,
        limits: BrokerLimits | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.message_size_limit = (
            int(message_size_limit) if message_size_limit is not None else default_size_limit()
        )
        if not 1 <= self.message_size_limit <= 256 * 2**20:
            raise ValueError(
                f"message_size_limit={message_size_limit} must be 1 byte .. 256 MiB (MQTT's limit)"
            )
        self.limits = limits if limits is not None else BrokerLimits()
        self.topics = topics or Topics()
        self.host = host
        self.port = int(port) if port is not None else free_port(host)
        self.process: subprocess.Popen | None = None
        self.binary = find_binary("mosquitto")
        passwd, acl = write_auth_files(self.workdir, credentials, self.topics, num_devices)
        data = self.workdir / "persistence"
        data.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "mosquitto.log"
        self.config_path = self.workdir / "mosquitto.conf"
        self.config_path.write_text(
            "\n".join(
                [
                    "# written by epic_zoo.deploy.broker",
                    "per_listener_settings false",
                    f"listener {self.port} {self.host}",
                    *(
                        [
                            f"{key} {Path(tls[key]).resolve()}"
                            for key in ("cafile", "certfile", "keyfile")
                        ]
                        if tls is not None
                        else []
                    ),
                    "allow_anonymous false",
                    # one session per principal: the client id is the user name, whatever
                    # the client sends, so nobody can take over another principal's session
                    "use_username_as_clientid true",
                    f"password_file {passwd}",
                    f"acl_file {acl}",
                    "persistence true",
                    f"persistence_location {data}/",
                    *self.limits.config_lines(),
                    f"message_size_limit {self.message_size_limit}",
                    f"max_packet_size {self.message_size_limit + 4096}",
                    "set_tcp_nodelay true",  # no Nagle delay on the small payloads
                    f"log_dest file {self.log_path}",
                    "log_type error",
                    "log_type warning",
                    "log_type notice",
                    "log_type information",
                    "connection_messages true",
                    # When started as root mosquitto would switch to user "mosquitto",
                    # which cannot read these files; stay the invoking user.
                    f"user {getpass.getuser()}",
                    "",
                ]
            ),
            encoding="utf-8",
        )

    @property
    def address(self) -> tuple[str, int]:
        """``(host, port)`` clients connect to."""
        return self.host, self.port

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, timeout_s: float = 10.0) -> Broker:
        """Start mosquitto and wait until it accepts TCP connections (``BrokerError`` on failure)."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.process = subprocess.Popen(
            [self.binary, "-c", str(self.config_path)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                err = self.process.stderr.read() if self.process.stderr else ""
                raise BrokerError(
                    f"mosquitto exited with code {self.process.returncode}: {err.strip()}\n"
                    f"{self._log_tail()}"
                )
            if self._accepting():
                return self
            time.sleep(0.02)
        self.stop()
        raise BrokerError(
            f"mosquitto did not listen on {self.host}:{self.port} within {timeout_s} s"
        )

    def _accepting(self) -> bool:
        """A TCP connect succeeds (true for a TLS listener too; the handshake is the client's)."""
        try:
            with socket.create_connection((self.host, self.port), timeout=0.2):
                return True
        except OSError:
            return False

    def stop(self, timeout_s: float = 5.0) -> None:
        """SIGTERM (mosquitto saves its persistence file), then SIGKILL after ``timeout_s``."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout_s)

    def restart(self, downtime_s: float = 0.0) -> None:
        """Stop, wait ``downtime_s``, start again on the same port with the saved state."""
        self.stop()
        time.sleep(downtime_s)
        self.start()

    def __enter__(self) -> Broker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
