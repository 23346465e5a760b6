"""CURVE keys: `learner keys DIR` creates them; `AllowList` decides which actor keys may connect.

Layout of DIR (the learner's side):
    learner.key, learner.key_secret     the learner's key pair
    authorized_actors/NAME.key          public key of each allowed actor (NAME becomes its actor_id)
    actors/NAME/                        created by `--actor NAME`: copy this directory to the robot and
                                        run `actor --keys DIR/actors/NAME` (holds actor.key, actor.key_secret,
                                        learner.key and the actor_id file)
Revoking an actor = deleting its file in authorized_actors/; the allow-list is re-read on every
handshake, so no restart is needed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
from pathlib import Path

import zmq
from zmq.auth import create_certificates, load_certificate

from common import metrics
from common.transport import ACTOR_ID_FILE, ACTOR_KEY, ALLOWED_ACTORS_DIR, LEARNER_KEY


def create_learner_keys(keys_dir: str | Path) -> Path:
    """Create DIR with the learner's key pair (kept if present) and an empty allow-list directory."""
    root = Path(keys_dir)
    root.mkdir(parents=True, exist_ok=True)
    (root / ALLOWED_ACTORS_DIR).mkdir(exist_ok=True)
    if not (root / f"{LEARNER_KEY}.key_secret").is_file():
        _, secret_file = create_certificates(root, LEARNER_KEY)
        os.chmod(secret_file, 0o600)
    return root


def create_actor_keys(keys_dir: str | Path, name: str) -> Path:
    """Create DIR/actors/NAME (an actor's key pair plus the learner's public key) and allow NAME.

    An existing key pair is kept (delete DIR/actors/NAME to rotate it).
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"bad actor name {name!r}")
    root = create_learner_keys(keys_dir)
    actor_dir = root / "actors" / name
    actor_dir.mkdir(parents=True, exist_ok=True)
    public_file, secret_file = actor_dir / f"{ACTOR_KEY}.key", actor_dir / f"{ACTOR_KEY}.key_secret"
    if not secret_file.is_file():  # idempotent: re-running never rotates a key a robot already holds
        public_file, secret_file = create_certificates(actor_dir, ACTOR_KEY, metadata={"actor_id": name})
        os.chmod(secret_file, 0o600)
    shutil.copy(root / f"{LEARNER_KEY}.key", actor_dir / f"{LEARNER_KEY}.key")
    (actor_dir / ACTOR_ID_FILE).write_text(name + "\n")
    shutil.copy(public_file, root / ALLOWED_ACTORS_DIR / f"{name}.key")
    return actor_dir


class AllowList:
    """ZAP credentials provider: a CURVE client key is allowed iff its file is in the allow-list directory.

    Runs in the authenticator's thread. Refusals are counted as
    `tandem_learner_rejected_messages_total{reason="unauthorized_key"}`.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self._lock = threading.Lock()
        self._names: dict[bytes, str] = {}
        self.refused = 0

    def reload(self) -> dict[bytes, str]:
        names = {}
        for path in sorted(self.directory.glob("*.key")):
            try:
                public, _ = load_certificate(path)
            except (OSError, ValueError):
                continue
            names[public] = path.stem
        with self._lock:
            self._names = names
        return names

    def callback(self, domain: str, z85_key: bytes) -> bool:
        allowed = z85_key in self.reload()
        if not allowed:
            self.refused += 1
            metrics.LEARNER_REJECTED.labels("unauthorized_key").inc()
        return allowed

    def name_of(self, z85_key: bytes) -> str | None:
        """The actor_id bound to an authenticated key (None if it was revoked meanwhile)."""
        with self._lock:
            return self._names.get(z85_key)


def start_authenticator(context: zmq.Context, allow: AllowList):
    """A ZAP handler for every CURVE socket of `context` (start it before binding)."""
    from zmq.auth.thread import ThreadAuthenticator

    auth = ThreadAuthenticator(context)
    auth.start()
    auth.configure_curve_callback(domain="*", credentials_provider=allow)
    allow.reload()
    return auth


def keys_main(argv: list[str]) -> int:
    """`learner keys DIR [--actor NAME ...]`."""
    parser = argparse.ArgumentParser(prog="learner keys", description=__doc__.split("\n\n")[0])
    parser.add_argument("dir", help="key directory (created if missing)")
    parser.add_argument("--actor", action="append", default=[], metavar="NAME",
                        help="also create a key pair for actor NAME and allow it (repeatable)")  # fmt: skip
    args = parser.parse_args(argv)
    root = create_learner_keys(args.dir)
    print(f"learner key pair: {root / (LEARNER_KEY + '.key')} (+ _secret); allow-list: {root / ALLOWED_ACTORS_DIR}")
    for name in args.actor:
        actor_dir = create_actor_keys(root, name)
        print(f"actor {name}: copy {actor_dir} to the robot and run `actor --keys {actor_dir} ...`")
    return 0


if __name__ == "__main__":
    sys.exit(keys_main(sys.argv[1:]))
