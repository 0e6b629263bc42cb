"""Real OpenSSH sshd on loopback ports: its own host key, config and known_hosts lines, for tests and the demo."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

SSHD = Path("/usr/sbin/sshd")
MAX_PORTS = 16
"""OpenSSH's MAX_LISTEN_SOCKS: more `Port` lines make sshd exit with "Too many listen sockets"."""


def free_ports(count: int) -> list[int]:
    """`count` distinct free 127.0.0.1 ports (bound together, then released)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def keygen(path: Path, comment: str = "rollback-tui") -> Path:
    """A fresh unencrypted ed25519 key pair made by the real ssh-keygen (private key at `path`, `.pub` beside)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)], check=True,
                   stdin=subprocess.DEVNULL, timeout=30)
    return path


def listening(port: int) -> bool:
    """An SSH server answers on this 127.0.0.1 port (its banner starts with `SSH-`)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@dataclass
class OpenSsh:
    """One sshd process listening on one or more loopback ports with one host key."""

    process: subprocess.Popen[bytes]
    ports: list[int]
    host_key: Path
    log: Path

    def known_hosts_lines(self) -> list[str]:
        key_type, key_data = Path(str(self.host_key) + ".pub").read_text().split()[:2]
        return [f"[127.0.0.1]:{port} {key_type} {key_data}" for port in self.ports]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_openssh(folder: Path, authorized_keys: Path, ports: list[int], *, name: str = "sshd",
                  max_startups: int = 200) -> OpenSsh:
    """Start `sshd -D` on 127.0.0.1 at `ports` with a new host key in `folder`; returns once every port answers.

    Needs root (PermitRootLogin, the privilege-separation directory); raises RuntimeError with sshd's log if it
    does not start. One sshd listens on at most MAX_PORTS ports (OpenSSH's MAX_LISTEN_SOCKS)."""
    if not 0 < len(ports) <= MAX_PORTS:
        raise ValueError(f"one sshd listens on 1 to {MAX_PORTS} ports, not {len(ports)}: start several")
    folder.mkdir(parents=True, exist_ok=True)
    host_key = keygen(folder / f"{name}_host_ed25519_key", name)
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    config = folder / f"{name}_config"
    config.write_text("".join(f"Port {port}\n" for port in ports) + f"""\
ListenAddress 127.0.0.1
HostKey {host_key}
AuthorizedKeysFile {authorized_keys}
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
PidFile none
MaxStartups {max_startups}
MaxSessions 100
""")
    log = folder / f"{name}.log"
    with log.open("wb") as handle:
        process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=handle, stderr=handle,
                                   stdin=subprocess.DEVNULL, start_new_session=True)
    server = OpenSsh(process, list(ports), host_key, log)
    deadline = time.monotonic() + 20
    waiting = list(ports)
    while waiting and time.monotonic() < deadline and process.poll() is None:
        waiting = [port for port in waiting if not listening(port)]
        if waiting:
            time.sleep(0.05)
    if waiting:
        server.stop()
        raise RuntimeError(f"sshd did not listen on {waiting}: {log.read_text(errors='replace')[-2000:]}")
    return server


def available() -> str:
    """'' when real sshd can run here, else why not."""
    if not SSHD.exists():
        return "OpenSSH sshd is not installed (apt-get install openssh-server)"
    if os.geteuid() != 0:
        return "starting sshd with PermitRootLogin needs root"
    return ""
