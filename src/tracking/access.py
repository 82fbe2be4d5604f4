"""Who may use the group's tracking server: MLflow's basic-auth app with a generated admin
credential (never MLflow's published default), users added with one command, per-experiment
permissions, and a generated PostgreSQL password. Every secret is written to a file only its
owner can read (0600, in a 0700 folder) and is never printed, logged or tagged.

python -m src.tracking.access serve DIR -- ARGS...       mlflow server ARGS with basic auth, its
                                                         config and keys in DIR (make server)
python -m src.tracking.access prepare DIR                that config alone
python -m src.tracking.access add-user NAME --edit EXP   a user: READ everywhere, EDIT on EXP;
                                                         their credentials file, for them to keep
python -m src.tracking.access grant NAME EXP edit        another permission on one experiment
python -m src.tracking.access postgres DIR               PostgreSQL's password file and pgpass

``add-user`` and ``grant`` talk to the running server (``--uri``, default the local one) as its
admin, whose credential they read from ``DIR/basic_auth.ini``.
"""

from __future__ import annotations

import argparse
import configparser
import os
import secrets
import sys
from contextlib import contextmanager
from pathlib import Path

from mlflow.exceptions import MlflowException

from src.core.errors import UserError, first_line

INI = "basic_auth.ini"
ADMIN = "admin"
USERS = "users"  # DIR/users/<name>.credentials: a user's own credentials file
DEFAULT_URI = "http://127.0.0.1:5000"
PERMISSIONS = ("read", "edit", "manage", "no_permissions")


def private_file(path: Path, text: str) -> Path:
    """Write ``text`` to ``path``, readable by its owner only, atomically."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)
    return path


def prepare(folder: Path) -> Path:
    """The basic-auth config of ``folder`` (created once; later calls keep it): users in
    ``folder/basic_auth.db``, everyone authenticated may read, nobody unauthenticated may do
    anything, and an admin whose password is generated here. Returns the config's path."""
    ini = folder / INI
    if ini.is_file():
        return ini
    config = configparser.ConfigParser()
    config["mlflow"] = {
        "default_permission": "READ",
        "database_uri": f"sqlite:///{folder.resolve() / 'basic_auth.db'}",
        "admin_username": ADMIN,
        "admin_password": secrets.token_urlsafe(24),
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
    }
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(private_file(ini, ""), "w") as out:
        config.write(out)
    return ini


def server_env(folder: Path) -> dict[str, str]:
    """What ``mlflow server --app-name basic-auth`` needs in its environment: the auth config
    of ``folder`` (:func:`prepare`) and the key its CSRF protection signs with, generated once
    (``folder/flask.secret``, owner-only) so that restarts keep the sessions valid."""
    secret = folder / "flask.secret"
    if not secret.is_file():
        private_file(secret, secrets.token_urlsafe(32))
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(prepare(folder)),
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret.read_text().strip(),
    }


def serve(folder: Path, args: list[str]) -> None:
    """Replace this process with ``mlflow server --app-name basic-auth ARGS``, its secrets in
    its environment only (never on a command line, which ``ps`` shows to every user)."""
    env = {**os.environ, **server_env(folder)}
    argv = [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth", *args]
    os.execve(sys.executable, argv, env)


def credentials_text(username: str, password: str) -> str:
    """MLflow's credentials file, as every MLflow client reads it from ``~/.mlflow/credentials``
    (``MLFLOW_TRACKING_USERNAME``/``MLFLOW_TRACKING_PASSWORD`` take precedence)."""
    return (
        f"[mlflow]\nmlflow_tracking_username = {username}\nmlflow_tracking_password = {password}\n"
    )


@contextmanager
def as_admin(folder: Path):
    """MLflow's client environment set to the admin's credential of ``folder``, then restored."""
    ini = folder / INI
    if not ini.is_file():
        raise UserError(f"no {ini}: run make server (or python -m src.tracking.access prepare)")
    config = configparser.ConfigParser()
    config.read(ini)
    keys = ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD")
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(dict(zip(keys, (ADMIN, config["mlflow"]["admin_password"]), strict=True)))
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def add_user(uri: str, folder: Path, name: str, edit: list[str]) -> Path:
    """Create user ``name`` with a generated password (READ everywhere, EDIT on the experiments
    ``edit``, each created if missing) and write their credentials file; returns its path."""
    password = secrets.token_urlsafe(18)
    with as_admin(folder):
        _call(lambda: _auth(uri).create_user(name, password), uri, f"create user {name}")
        for experiment in edit:
            grant(uri, folder, name, experiment, "edit")
    return private_file(folder / USERS / f"{name}.credentials", credentials_text(name, password))


def grant(uri: str, folder: Path, name: str, experiment: str, permission: str) -> None:
    """Give user ``name`` ``permission`` (read, edit, manage) on ``experiment`` (by name)."""
    if permission not in PERMISSIONS:
        raise UserError(f"permission {permission} is unknown; choose one of {PERMISSIONS}")
    from mlflow.server.auth import RESOURCE_TYPE_EXPERIMENT
    from mlflow.tracking import MlflowClient

    with as_admin(folder):
        client = MlflowClient(uri)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        _call(
            lambda: _auth(uri).grant_user_permission(
                name, RESOURCE_TYPE_EXPERIMENT, experiment_id, permission.upper()
            ),
            uri,
            f"grant {permission} on {experiment} to {name}",
        )


def _auth(uri: str):
    from mlflow.server import get_app_client

    return get_app_client("basic-auth", tracking_uri=uri)


def _call(fn, uri: str, what: str):
    try:
        return fn()
    except MlflowException as err:
        raise UserError(f"{uri} refused to {what} ({first_line(err, 160)})") from None


def postgres(folder: Path, user: str = "mlflow") -> tuple[Path, Path]:
    """A generated PostgreSQL password (created once): ``password`` (``initdb --pwfile``) and
    ``pgpass`` (libpq's password file, ``PGPASSFILE``: clients and the MLflow server find the
    password there, never in a URI, a command line or a log)."""
    password_file, pgpass = folder / "password", folder / "pgpass"
    if not password_file.is_file():
        password = secrets.token_urlsafe(24)
        private_file(password_file, password + "\n")
        private_file(pgpass, f"*:*:*:{user}:{password}\n")
    return password_file, pgpass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m src.tracking.access", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("prepare").add_argument("dir", type=Path)
    serving = sub.add_parser("serve")
    serving.add_argument("dir", type=Path)
    serving.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("postgres").add_argument("dir", type=Path)
    for name in ("add-user", "grant"):
        cmd = sub.add_parser(name)
        cmd.add_argument("name")
        cmd.add_argument("--dir", type=Path, default=Path("mlruns/server-auth"))
        cmd.add_argument("--uri", default=os.environ.get("MLFLOW_TRACKING_URI", DEFAULT_URI))
    sub.choices["add-user"].add_argument("--edit", nargs="*", default=[])
    sub.choices["grant"].add_argument("experiment")
    sub.choices["grant"].add_argument("permission", choices=PERMISSIONS)
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


def _run(args) -> int:
    if args.command == "serve":
        serve(args.dir, [a for a in args.args if a != "--"])
    elif args.command == "prepare":
        print(f"auth config: {prepare(args.dir)} (admin credential inside, owner-only)")
    elif args.command == "postgres":
        _, pgpass = postgres(args.dir)
        print(f"PostgreSQL password generated: {args.dir}/password and {pgpass} (owner-only)")
    elif args.command == "add-user":
        path = add_user(args.uri, args.dir, args.name, args.edit)
        edit = f", EDIT on {', '.join(args.edit)}" if args.edit else ""
        print(f"user {args.name} added to {args.uri} (READ everywhere{edit}); hand them {path}: "
              "they copy it to ~/.mlflow/credentials")  # fmt: skip
    else:
        grant(args.uri, args.dir, args.name, args.experiment, args.permission)
        print(f"{args.name} may now {args.permission} {args.experiment} on {args.uri}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
