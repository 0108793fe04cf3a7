"""Base images for the container test: the official ``python:3.12-slim`` and ``postgres:16`` when
the engine has them or can pull them, else stand-ins built here from Debian packages.

No container registry is reachable on the project's machines (only the package registries), so
the stand-ins are made with ``mmdebstrap --variant=minbase bookworm`` and ``docker import``:
- python: python3, pip, venv, python-is-python3 and ca-certificates, with Debian's
  EXTERNALLY-MANAGED marker removed (the official image's pip installs where it is told) and
  apt's docker-clean settings (no package caches in layers), as the official image has them.
  Python is Debian's 3.11, which tickcast supports; requirements.lock covers 3.11 and newer.
- postgres: Debian's postgresql with an entry point that does what the official image does with
  POSTGRES_USER, POSTGRES_PASSWORD and POSTGRES_DB (standins/postgres-entrypoint.sh).
Outbound TLS on these machines passes a proxy whose CA certificates the host trusts as local
additions (/usr/local/share/ca-certificates); the python stand-in trusts them too, since pip
reaches PyPI through it while the image builds. That is a stand-in matter: the real image, built
on the official base, never carries them.

Stand-ins are named ``tickcast-standin/...`` (never the official names, so an engine shared with
other work is not misled) and labelled with a hash of their recipe: a changed recipe (or new local
CA certificates) rebuilds them, an unchanged one is reused from the engine's cache.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .docker_engine import Engine

HERE = Path(__file__).resolve().parent
LOCAL_CA_DIR = Path("/usr/local/share/ca-certificates")
RECIPE_LABEL = "tickcast.standin.recipe"

# Debian's docker images ship this as /etc/apt/apt.conf.d/docker-clean.
DOCKER_CLEAN = (
    'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
    '/var/cache/apt/*.bin || true"; };\n'
    'APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb '
    '/var/cache/apt/*.bin || true"; };\n'
    'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n'
)


@dataclass(frozen=True)
class StandIn:
    official: str
    name: str
    packages: tuple[str, ...]
    hooks: tuple[str, ...]  # mmdebstrap --customize-hook shell commands ("$1" is the new root)
    changes: tuple[str, ...]  # Dockerfile instructions for `docker import --change`
    stop_signal: str | None = None  # STOPSIGNAL, which `docker import` cannot set: added by a build
    inputs: tuple[Path, ...] = ()  # files the hooks read, part of the recipe

    def recipe_hash(self) -> str:
        # The hooks name files of this checkout by absolute path: hashed without it, so that another
        # clone (CI's) reuses a stand-in whose recipe is the same.
        hooks = tuple(hook.replace(str(HERE), "<tests/support>") for hook in self.hooks)
        digest = hashlib.sha256(repr((self.packages, hooks, self.changes, self.stop_signal)).encode())
        for path in self.inputs:
            digest.update(path.name.encode() + path.read_bytes())
        return digest.hexdigest()[:16]


def _clean_apt_hook() -> str:
    return f"printf '%s' '{DOCKER_CLEAN}' > \"$1/etc/apt/apt.conf.d/docker-clean\""


PYTHON = StandIn(
    official="python:3.12-slim",
    name="tickcast-standin/python:3.12-slim",
    packages=("python3", "python3-pip", "python3-venv", "python-is-python3", "ca-certificates"),
    hooks=(
        _clean_apt_hook(),
        f'mkdir -p "$1{LOCAL_CA_DIR}" && for c in {LOCAL_CA_DIR}/*.crt; do [ -e "$c" ] && cp "$c" "$1{LOCAL_CA_DIR}/"; '
        'done; chroot "$1" update-ca-certificates >/dev/null',
        'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
    ),
    changes=("ENV LANG=C.UTF-8", 'CMD ["python3"]'),
    inputs=tuple(sorted(LOCAL_CA_DIR.glob("*.crt"))),
)

POSTGRES = StandIn(
    official="postgres:16",
    name="tickcast-standin/postgres:16",
    packages=("postgresql",),
    hooks=(
        _clean_apt_hook(),
        'rm -rf "$1/var/lib/postgresql/"[0-9]* "$1/etc/postgresql/"[0-9]*',  # the package's own cluster
        f'install -m 755 {HERE / "standins" / "postgres-entrypoint.sh"} "$1/usr/local/bin/docker-entrypoint.sh"',
        # /usr/lib/postgresql/bin -> <version>/bin: the server's programs on PATH, as in the official image
        'ln -sfn "$(cd "$1/usr/lib/postgresql" && ls -d [0-9]* | sort -n | tail -n1)/bin" "$1/usr/lib/postgresql/bin"',
    ),
    changes=(
        "ENV PGDATA=/var/lib/postgresql/data",
        "ENV LANG=C.UTF-8",
        "ENV PATH=/usr/lib/postgresql/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VOLUME /var/lib/postgresql/data",
        "EXPOSE 5432",
        'ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]',
        'CMD ["postgres"]',
    ),
    stop_signal="SIGINT",  # as the official image: a fast shutdown, not a wait for clients to leave
    inputs=(HERE / "standins" / "postgres-entrypoint.sh",),
)


def _current_standin(engine: Engine, standin: StandIn) -> bool:
    done = engine.docker(
        "image",
        "inspect",
        "--format",
        f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}',
        standin.name,
        check=False,
        timeout=60,
    )
    return done.returncode == 0 and done.stdout.strip() == standin.recipe_hash()


def build_standin(engine: Engine, standin: StandIn) -> None:
    """mmdebstrap's root file system, streamed straight into `docker import`."""
    if shutil.which("mmdebstrap") is None:
        raise AssertionError(
            f"{standin.official} cannot be pulled and mmdebstrap, which builds its stand-in, "
            "is not installed (make test installs it; Debian: apt-get install mmdebstrap)"
        )
    argv = [
        "mmdebstrap",
        "--quiet",
        "--variant=minbase",
        "--include=" + ",".join(standin.packages),
        *[f"--customize-hook={hook}" for hook in standin.hooks],
        "bookworm",
        "-",
    ]
    changes = [
        arg
        for change in (*standin.changes, f"LABEL {RECIPE_LABEL}={standin.recipe_hash()}")
        for arg in ("--change", change)
    ]
    # mmdebstrap in a session of its own: when writing the tarball fails it sends SIGHUP to its
    # whole process group, which would otherwise be this test run.
    with (
        tempfile.TemporaryFile() as log,
        subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=log, start_new_session=True) as rootfs,
    ):
        imported = subprocess.run(
            ["docker", "import", *changes, "-", standin.name],
            stdin=rootfs.stdout,
            env=engine.env(),
            capture_output=True,
            text=True,
            timeout=1800,
        )
        rootfs.stdout.close()
        rootfs.wait(timeout=60)
        log.seek(0)
        errors = log.read().decode(errors="replace")
    if rootfs.returncode != 0 or imported.returncode != 0:
        raise AssertionError(
            f"building the stand-in {standin.name} failed: mmdebstrap exit {rootfs.returncode}: "
            f"{errors[-1500:]}\ndocker import: {imported.stderr.strip()}"
        )
    if standin.stop_signal:
        dockerfile = f"FROM {standin.name}\nSTOPSIGNAL {standin.stop_signal}\n"
        engine.docker("build", "--quiet", "-t", standin.name, "-", input=dockerfile, timeout=600)


def base_image(engine: Engine, standin: StandIn) -> tuple[str, str]:
    """(image to use, how it was obtained): the official image if present or pullable, else the
    stand-in (reused while its recipe is unchanged)."""
    if engine.has_image(standin.official):
        return standin.official, "official, already present"
    pulled = engine.docker("pull", "--quiet", standin.official, check=False, timeout=600)
    if pulled.returncode == 0:
        return standin.official, "official, pulled"
    reason = (pulled.stderr.strip().splitlines() or ["pull failed"])[-1][:160]
    if _current_standin(engine, standin):
        return standin.name, f"stand-in, cached (cannot pull {standin.official}: {reason})"
    build_standin(engine, standin)
    return standin.name, f"stand-in, built now (cannot pull {standin.official}: {reason})"
