"""SSH tunnel through a bastion host for warehouses that are not reachable directly.

zerocopy generates an ed25519 key pair per credential and shows the public key; the user adds
it to ``~<user>/.ssh/authorized_keys`` on the bastion. The adapter receives the private key
(OpenSSH or PKCS#8 PEM) as the secret ``ssh_private_key`` and opens one local forward
``127.0.0.1:<ephemeral> -> <warehouse host>:<port>`` per adapter, on a private event loop in a
daemon thread, because the drivers are blocking and run in worker threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncssh  # imported where a tunnel opens: 0.36 s a process, for SSH sources only

from zerocopy import errors
from zerocopy.errors import ZerocopyError

DEFAULT_SSH_PORT = 22
CONNECT_TIMEOUT_S = 15.0


@dataclass(frozen=True, slots=True)
class TunnelSettings:
    """Where the bastion is and who we are there; ``host_key`` pins the bastion's public key."""

    host: str
    user: str
    port: int = DEFAULT_SSH_PORT
    host_key: str | None = None
    """The bastion's host public key (``ssh-ed25519 AAAA…``); unset accepts any (say so in the UI)."""

    @classmethod
    def from_setting(cls, value: Mapping[str, Any]) -> TunnelSettings:
        """Validate the ``ssh_tunnel`` setting: ``{host, user, port?, host_key?}``."""
        if not isinstance(value, Mapping):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "setting 'ssh_tunnel' must be an object with 'host', 'user' and optional 'port'",
                details={"field": "ssh_tunnel"},
            )
        missing = [k for k in ("host", "user") if not value.get(k)]
        if missing:
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                f"setting 'ssh_tunnel' needs {' and '.join(repr(m) for m in missing)}",
                details={"field": "ssh_tunnel"},
            )
        try:
            port = int(value.get("port") or DEFAULT_SSH_PORT)
        except (TypeError, ValueError):
            raise ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "setting 'ssh_tunnel.port' must be a number",
                details={"field": "ssh_tunnel.port"},
            ) from None
        return cls(
            host=str(value["host"]),
            user=str(value["user"]),
            port=port,
            host_key=value.get("host_key") or None,
        )


class SSHTunnel:
    """A local port forward through a bastion; :meth:`open` returns the local port."""

    def __init__(
        self, settings: TunnelSettings, private_key: str, remote_host: str, remote_port: int
    ) -> None:
        self.settings = settings
        self._private_key = private_key
        self._remote = (remote_host, remote_port)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._listener: asyncssh.SSHListener | None = None
        self._lock = threading.Lock()
        self.local_port: int | None = None

    def __repr__(self) -> str:
        # Never show the key, even by accident in a traceback.
        s = self.settings
        return f"SSHTunnel({s.user}@{s.host}:{s.port} -> {self._remote[0]}:{self._remote[1]})"

    def open(self) -> int:
        """Start the tunnel once (thread-safe) and return the local port to connect to."""
        with self._lock:
            if self.local_port is not None and self._conn is not None:
                if not self._conn.is_closed():
                    return self.local_port
                # The bastion went away (restart, idle cut, network): reconnect instead of
                # handing the driver a local port whose forward leads nowhere.
                self._stop_loop()
                self.local_port = None
            self._start_loop()
            assert self._loop is not None
            future: Future[int] = asyncio.run_coroutine_threadsafe(self._connect(), self._loop)
            try:
                self.local_port = future.result(timeout=CONNECT_TIMEOUT_S + 5)
            except Exception as exc:
                self._stop_loop()
                raise self._map(exc) from None
            return self.local_port

    def close(self) -> None:
        """Close the forward and the SSH connection; idempotent."""
        with self._lock:
            if self._loop is None:
                return
            future = asyncio.run_coroutine_threadsafe(self._disconnect(), self._loop)
            with contextlib.suppress(Exception):
                future.result(timeout=5)
            self._stop_loop()
            self.local_port = None

    # ------------------------------------------------------------------ internals
    def _start_loop(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="zc-ssh-tunnel", daemon=True)
        thread.start()
        self._loop, self._thread = loop, thread

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop, self._thread, self._conn, self._listener = None, None, None, None
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)
        if thread is not None:
            thread.join(timeout=5)
        if loop is not None and not loop.is_running():
            loop.close()

    async def _connect(self) -> int:
        import asyncssh

        s = self.settings
        key = asyncssh.import_private_key(self._private_key)
        known_hosts: Any = None
        if s.host_key:
            host_key = asyncssh.import_public_key(s.host_key)
            known_hosts = ([host_key], [], [])
        self._conn = await asyncssh.connect(
            s.host,
            port=s.port,
            username=s.user,
            client_keys=[key],
            known_hosts=known_hosts,
            agent_path=None,
            password=None,
            kbdint_auth=False,
            connect_timeout=CONNECT_TIMEOUT_S,
            keepalive_interval=30,
        )
        self._listener = await self._conn.forward_local_port("127.0.0.1", 0, *self._remote)
        return int(self._listener.get_port())

    async def _disconnect(self) -> None:
        if self._listener is not None:
            self._listener.close()
        if self._conn is not None:
            self._conn.close()
            await self._conn.wait_closed()

    def _map(self, exc: BaseException) -> ZerocopyError:
        import asyncssh

        s = self.settings
        where = f"SSH bastion {s.host}:{s.port}"
        details = {"ssh_host": s.host, "ssh_port": s.port, "ssh_user": s.user}
        if isinstance(exc, asyncssh.KeyImportError):
            return ZerocopyError(
                errors.INVALID_CREDENTIAL,
                "secret 'ssh_private_key' is not a readable private key (OpenSSH or PEM)",
                details={"field": "ssh_private_key"},
            )
        if isinstance(exc, asyncssh.PermissionDenied):
            return ZerocopyError(
                errors.AUTH_FAILED,
                f"{where} refused the key for user {s.user!r}: add the credential's public key "
                f"to ~{s.user}/.ssh/authorized_keys on the bastion",
                details=details,
            )
        if isinstance(exc, asyncssh.HostKeyNotVerifiable):
            return ZerocopyError(
                errors.AUTH_FAILED,
                f"{where} presented a host key that does not match 'ssh_tunnel.host_key': "
                "check the bastion's key (ssh-keyscan) and update the setting",
                details=details,
            )
        if isinstance(exc, asyncssh.ChannelOpenError):
            return ZerocopyError(
                errors.UNREACHABLE,
                f"{where} could not open a forward to {self._remote[0]}:{self._remote[1]}: "
                f"{exc.reason}",
                details=details,
            )
        if isinstance(exc, (OSError, TimeoutError, asyncssh.Error)):
            return ZerocopyError(
                errors.UNREACHABLE,
                f"cannot reach {where}: {exc}; check the host, port and firewall",
                details=details,
            )
        return ZerocopyError(errors.UNREACHABLE, f"SSH tunnel failed: {exc}", details=details)
