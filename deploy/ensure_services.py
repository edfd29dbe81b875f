"""PostgreSQL and RabbitMQ on 127.0.0.1, whatever this machine has (`make run`, `make test`).

The first of these that applies:

1. they answer already: nothing to do;
2. they are installed here and stopped: start them;
3. a container engine works (podman or docker): run PostgreSQL, RabbitMQ and the mail catcher
   as containers (the images of `deploy/compose.yaml`, or the same made from Debian's packages
   where they cannot be pulled), published on 127.0.0.1 only;
4. Debian or Ubuntu where apt may be used (root, or passwordless sudo): install `postgresql`
   and `rabbitmq-server` from the distribution, trust local connections on 127.0.0.1 only,
   create the databases, enable RabbitMQ's feature flags (quorum queues) and start both;
5. otherwise: say exactly what to install, and exit 1.

What was set up is found again by step 1 or 2 (or as the stopped containers of step 3) on the
next run: nothing is installed twice. Standard library only: it runs before anything else.
`ASF_SETUP=containers|apt` forces a step; `ASF_POSTGRES_PORT`, `ASF_RABBITMQ_PORT`,
`ASF_SMTP_PORT`, `ASF_CONTAINER_PREFIX` and `ASF_STACK_ENV` move the containers of step 3
and what they tell `run_local.py` (tests).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import containers  # deploy/containers.py, beside this file

DATABASES = ("asf_registry", "asf_casework", "asf_notifications")
STACK_ENV = Path(os.environ.get("ASF_STACK_ENV")
                 or Path(__file__).resolve().parents[1] / "var" / "stack.env")
"""Settings `run_local.py` takes from what was set up here (the mail catcher container)."""
UPSTREAM = {"postgres": containers.compose_image("postgres"),
            "rabbitmq": containers.compose_image("rabbitmq"),
            "mail": containers.compose_image("mailcatcher")}


def say(line: str) -> None:
    print(f"[setup] {line}", flush=True)


def port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def answers(p: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", p), timeout=1):
            return True
    except OSError:
        return False


def wait_for(p: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if answers(p):
            return True
        time.sleep(1)
    return False


def privileged() -> list[str] | None:
    """How to run a command as root here: [] when root, sudo -n when allowed, else None."""
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True,
                               check=False).returncode == 0:
        return [sudo, "-n"]
    return None


def run(cmd: list[str], *, input: str | None = None, env: dict[str, str] | None = None,
        stdout: int | None = None) -> None:
    subprocess.run(cmd, check=True, text=True, input=input, env=env, stdout=stdout)


# --- 2. installed here ---------------------------------------------------------------------


def postgres_installed() -> bool:
    return shutil.which("pg_ctlcluster") is not None and any(Path("/etc/postgresql").glob("*/*"))


def rabbitmq_installed() -> bool:
    return shutil.which("rabbitmq-server") is not None


def start_installed(pg: int, amqp: int) -> None:
    root = privileged()
    if not answers(pg) and postgres_installed():
        if root is None:
            raise SystemExit("PostgreSQL is installed but stopped, and starting it needs root: "
                             "`sudo pg_ctlcluster <version> main start`")
        for cluster in sorted(Path("/etc/postgresql").glob("*/*")):
            say(f"starting PostgreSQL {cluster.parent.name}/{cluster.name}")
            subprocess.run([*root, "pg_ctlcluster", "--skip-systemctl-redirect",
                            cluster.parent.name, cluster.name, "start"], check=False)
        wait_for(pg, 30)
    if not answers(amqp) and rabbitmq_installed():
        if root is None:
            raise SystemExit("RabbitMQ is installed but stopped, and starting it needs root: "
                             "`sudo rabbitmq-server -detached`")
        say("starting RabbitMQ")
        subprocess.run([*root, "rabbitmq-server", "-detached"], check=False)
        wait_for(amqp, 90)
        subprocess.run([*root, "rabbitmqctl", "await_startup"], capture_output=True, check=False)


# --- 3. containers -------------------------------------------------------------------------


def container_image(engine: containers.Engine, kind: str) -> str | None:
    """The upstream image when it is here or can be pulled, else the one made here."""
    image = UPSTREAM[kind]
    if engine.image_exists(image) or engine.run("pull", image, check=False, quiet=True,
                                                timeout=300).returncode == 0:
        return image
    if kind == "mail":
        return None
    return containers.ensure_dev_images(engine)[kind]


def start_containers(engine: containers.Engine, pg: int, amqp: int, smtp: int) -> None:
    prefix = os.environ.get("ASF_CONTAINER_PREFIX", "asf-samverkan")
    containers.ensure_runtime(engine)
    wanted = {
        "postgres": (pg, ["-p", f"127.0.0.1:{pg}:5432", "-e", "POSTGRES_HOST_AUTH_METHOD=trust",
                          "-v", f"{prefix}-pgdata:/var/lib/postgresql/data"]),
        "rabbitmq": (amqp, ["-p", f"127.0.0.1:{amqp}:5672"]),
        "mail": (smtp, ["-p", f"127.0.0.1:{smtp}:1025", "-p", "127.0.0.1::8025"]),
    }
    STACK_ENV.unlink(missing_ok=True)
    for kind, (host_port, options) in wanted.items():
        name = f"{prefix}-{kind}"
        if kind == "mail" and answers(host_port):
            remember_mail_catcher(smtp)
        if answers(host_port):
            continue
        if engine.run("container", "inspect", name, check=False, quiet=True).returncode == 0:
            say(f"starting the {kind} container {name} (set up before)")
            engine.run("start", name, quiet=True)
            continue
        image = container_image(engine, kind)
        if image is None:
            say("no mail catcher image can be pulled here: the notifications service's "
                "built-in mail catcher is used (var/mail/)")
            continue
        say(f"running {image} as {name} on 127.0.0.1:{host_port}")
        engine.run("run", "-d", "--name", name, *options, image, quiet=True)
        if kind == "mail":
            remember_mail_catcher(smtp)
    if not (wait_for(pg, 60) and wait_for(amqp, 120)):
        raise SystemExit(f"the containers did not answer on 127.0.0.1:{pg} and :{amqp}; "
                         f"see `{engine.name} logs {prefix}-postgres` / `{prefix}-rabbitmq`")


def remember_mail_catcher(smtp: int) -> None:
    """The services send to the mail catcher container (its web page: `podman port`)."""
    STACK_ENV.parent.mkdir(parents=True, exist_ok=True)
    STACK_ENV.write_text(f"SMTP_HOST=127.0.0.1\nSMTP_PORT={smtp}\nSMTP_TLS=none\n")


# --- 4. apt --------------------------------------------------------------------------------


def install_with_apt(root: list[str], pg: int, amqp: int) -> None:
    say("PostgreSQL and RabbitMQ are not on this machine: installing the distribution's "
        "postgresql and rabbitmq-server packages (apt-get), trusted from 127.0.0.1 only")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = [*root, "apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    started = time.monotonic()
    run([*apt, "update"], env=env, stdout=subprocess.DEVNULL)
    run([*apt, "install", "-y", "--no-install-recommends", "postgresql", "rabbitmq-server"],
        env=env, stdout=subprocess.DEVNULL)
    say(f"installed in {time.monotonic() - started:.0f} s; configuring and starting them")
    # Whatever the packages started is stopped, configured, then started as step 2 does.
    for cluster in Path("/etc/postgresql").glob("*/main"):
        subprocess.run([*root, "pg_ctlcluster", "--skip-systemctl-redirect",
                        cluster.parent.name, "main", "stop"], capture_output=True, check=False)
        write(root, cluster / "pg_hba.conf",
              "# ASF Samverkan development: local connections only, trusted.\n"
              "local all postgres peer\nlocal all all peer\n"
              "host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n")
        write(root, cluster / "conf.d" / "asf-samverkan.conf",
              f"listen_addresses = '127.0.0.1'\nport = {pg}\n")
    subprocess.run([*root, "rabbitmqctl", "stop"], capture_output=True, check=False)
    subprocess.run([*root, "epmd", "-kill"], capture_output=True, check=False)
    # RabbitMQ, its Erlang port mapper and its distribution port listen on 127.0.0.1 only
    # (the node is rabbit@localhost, so its own CLI finds it there).
    write(root, Path("/etc/rabbitmq/rabbitmq-env.conf"),
          f"NODENAME=rabbit@localhost\nNODE_IP_ADDRESS=127.0.0.1\nNODE_PORT={amqp}\n"
          "ERL_EPMD_ADDRESS=127.0.0.1\nexport ERL_EPMD_ADDRESS\n"
          'SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"\n')
    start_installed(pg, amqp)
    if not answers(pg):
        raise SystemExit(f"PostgreSQL was installed but does not answer on 127.0.0.1:{pg}")
    for database in DATABASES:
        subprocess.run(["psql", "-h", "127.0.0.1", "-p", str(pg), "-U", "postgres", "-qc",
                        f'CREATE DATABASE "{database}"'], capture_output=True, check=False)
    subprocess.run([*root, "rabbitmqctl", "enable_feature_flag", "all"], capture_output=True,
                   check=False)


def write(root: list[str], path: Path, text: str) -> None:
    """Write a system file (as root where needed)."""
    run([*root, "mkdir", "-p", str(path.parent)])
    run([*root, "tee", str(path)], input=text, stdout=subprocess.DEVNULL)


NOTHING_WORKS = """\
PostgreSQL and RabbitMQ are needed on 127.0.0.1 (ports {pg} and {amqp}), and this machine
has neither, no working container engine, and no apt that may be used (root or passwordless
sudo). Install one of: (a) PostgreSQL 15 or newer and RabbitMQ 3.10 or newer, started, with
PostgreSQL trusting user `postgres` from 127.0.0.1 and RabbitMQ's guest/guest (Debian/Ubuntu:
`sudo apt-get install postgresql rabbitmq-server`; macOS: `brew install postgresql@16
rabbitmq`); or (b) podman or Docker, and `make run` starts both in containers. Or point the
stack at servers elsewhere: DATABASE_URL / BROKER_URL (services), TEST_DATABASE_URL /
TEST_BROKER_URL (tests)."""


def main() -> int:
    pg, amqp = port("ASF_POSTGRES_PORT", 5432), port("ASF_RABBITMQ_PORT", 5672)
    smtp = port("ASF_SMTP_PORT", 1025)
    forced = os.environ.get("ASF_SETUP", "")
    up = answers(pg) and answers(amqp)
    if not forced and not up and (postgres_installed() or rabbitmq_installed()):
        start_installed(pg, amqp)
        up = answers(pg) and answers(amqp)
    if not up or forced:
        engine = containers.find_engine() if forced in ("", "containers") else None
        root = privileged() if shutil.which("apt-get") else None
        try:
            if engine is not None:
                start_containers(engine, pg, amqp, smtp)
            elif root is not None and forced in ("", "apt"):
                install_with_apt(root, pg, amqp)
            elif not up:
                print(NOTHING_WORKS.format(pg=pg, amqp=amqp), file=sys.stderr)
                return 1
        except (containers.ContainerError, subprocess.CalledProcessError) as error:
            print(f"[setup] {error}", file=sys.stderr)
            return 1
    up = answers(pg) and answers(amqp)
    say(f"PostgreSQL on 127.0.0.1:{pg}: {'up' if answers(pg) else 'DOWN'}; "
        f"RabbitMQ on 127.0.0.1:{amqp}: {'up' if answers(amqp) else 'DOWN'}")
    return 0 if up else 1


if __name__ == "__main__":
    sys.exit(main())
