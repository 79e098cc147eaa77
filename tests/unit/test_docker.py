"""Static checks of the container stack: docker/compose.yaml, docker/Dockerfile, prefect.yaml.

No Docker engine is needed: the files are parsed and cross-checked (services, health gating,
credentials only through ${VAR}, the paths and names the files share), and the two small scripts
that run inside the containers are executed here.
"""

from __future__ import annotations

import ast
import fnmatch
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "docker"
SERVICES = {"postgres", "prefect-server", "mlflow", "prefect-worker", "deploy"}
# Who must wait for whom to be healthy, not merely started.
HEALTHY_DEPENDENCIES = {
    "prefect-server": {"postgres"},
    "mlflow": {"postgres"},
    "prefect-worker": {"prefect-server", "mlflow"},
    "deploy": {"prefect-server"},
}
SECRET_NAME = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|_KEY\b|^KEY$", re.IGNORECASE)
# Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR:?error}, $VAR; `$$` is a literal dollar.
VAR_REF = re.compile(r"(?<!\$)\$(?:\{([A-Za-z_][A-Za-z0-9_]*)[^}]*\}|([A-Za-z_][A-Za-z0-9_]*))")
ONLY_REFS = re.compile(r"^(?:\$\{[A-Za-z_][A-Za-z0-9_]*[^}]*\})+$")
URL_PASSWORD = re.compile(r"://[^/\s:@]+:([^@\s]+)@")
APP_DIR = "/home/molvae/app"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    for line in (DOCKER / ".env.example").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        assert sep, f"not KEY=VALUE: {line!r}"
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


@pytest.fixture(scope="module")
def prefect_project() -> dict:
    return yaml.safe_load((ROOT / "prefect.yaml").read_text())


@pytest.fixture(scope="module")
def deployment(prefect_project) -> dict:
    (only,) = prefect_project["deployments"]
    return only


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Dockerfile instructions, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", (DOCKER / "Dockerfile").read_text())
    return [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]


def strings(node):
    """Every string (keys included) in a parsed YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield from strings(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def environment(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the `- KEY=value` form
        env = dict(item.partition("=")[::2] for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command(service: dict) -> list[str]:
    cmd = service.get("command") or []
    return cmd.split() if isinstance(cmd, str) else [str(c) for c in cmd]


def interpolate(text: str, env: dict[str, str]) -> str:
    """What compose makes of ${VAR}, ${VAR:-default} and ${VAR:?error} given `env`."""

    def one(m: re.Match) -> str:
        name, op, arg = m.group(1), m.group(2) or "", m.group(3) or ""
        if op == ":?" and not env.get(name):
            raise KeyError(name)
        return env.get(name) or (arg if op == ":-" else "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:[-?])([^}]*))?\}", one, text)


def flag_value(args: list[str], flag: str) -> str:
    assert flag in args, f"{flag} missing from {args}"
    return args[args.index(flag) + 1]


def test_compose_defines_the_five_services(services):
    assert set(services) == SERVICES


def test_long_running_services_have_healthchecks(services):
    for name, service in services.items():
        if str(service.get("restart", "no")) == "no":
            continue  # one-shot jobs
        test = (service.get("healthcheck") or {}).get("test")
        assert test and test != ["NONE"], f"{name} has no healthcheck"
    assert services["deploy"].get("restart") == "no"


def test_dependencies_wait_for_healthy_services(services):
    for name, needed in HEALTHY_DEPENDENCIES.items():
        depends = services[name].get("depends_on")
        assert isinstance(depends, dict), f"{name}: depends_on needs the long form with conditions"
        assert set(depends) == needed
        for dep, spec in depends.items():
            assert spec.get("condition") == "service_healthy", f"{name} -> {dep}"
            assert "healthcheck" in services[dep], f"{name} waits on {dep}, which has no healthcheck"


def test_every_compose_variable_is_defined_in_env_example(compose, env_example):
    used = {a or b for s in strings(compose) for a, b in VAR_REF.findall(s)}
    assert {"POSTGRES_USER", "POSTGRES_PASSWORD", "MLFLOW_ADMIN_USERNAME", "MLFLOW_ADMIN_PASSWORD"} <= used
    assert sorted(used - set(env_example)) == []


def test_env_example_holds_placeholders_only(env_example):
    for key in ("POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"):
        assert env_example[key] == "change-me"
    assert env_example["MOLVAE_CRON"] == "0 2 * * *"


def test_no_literal_secrets_in_compose(compose, services):
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key):
                assert ONLY_REFS.match(value), f"{name}: {key} must come from ${{VAR}}, not a literal"
    for s in strings(compose):
        for password in URL_PASSWORD.findall(s):
            assert ONLY_REFS.match(password), f"literal password in a URL: {s}"
        # Anything still reading like `password=xyz` once the ${...} references are removed.
        literal = re.sub(r"\$\{[^}]*\}", "", s)
        assert not re.search(r"(?i)(password|secret|token)\s*[=:]\s*\S", literal), s


def test_no_literal_secrets_in_dockerfile(dockerfile):
    for line in dockerfile:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() in {"ENV", "ARG"}:
            for name in re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest):
                assert not SECRET_NAME.search(name), f"secret baked into the image: {line}"
        assert not URL_PASSWORD.search(line), f"credentials in a URL: {line}"


def test_dockerfile_base_image_torch_and_user(dockerfile):
    first_from = next(i for i, ln in enumerate(dockerfile) if ln.upper().startswith("FROM "))
    assert "ARG BASE_IMAGE=python:3.11-slim" in dockerfile[:first_from]
    assert dockerfile[first_from] == "FROM ${BASE_IMAGE}"
    assert "ARG TORCH_SPEC=torch==2.13.0" in dockerfile
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile
    assert any("pip install" in ln and "$TORCH_INDEX" in ln and "$TORCH_SPEC" in ln for ln in dockerfile)
    assert any("psycopg2-binary" in ln and "mlflow[auth]" in ln for ln in dockerfile)

    users = [ln.split()[1] for ln in dockerfile if ln.upper().startswith("USER ")]
    assert users, "the image must not run as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert any("--uid 1000" in ln and "molvae" in ln for ln in dockerfile)
    assert [ln for ln in dockerfile if ln.upper().startswith("WORKDIR ")][-1] == "WORKDIR /home/molvae/work"
    assert any("PREFECT_SERVER_ANALYTICS_ENABLED=false" in ln for ln in dockerfile)
    assert dockerfile[-1] == 'CMD ["molvae", "--help"]'


def test_the_worker_image_runs_the_prefect_version_of_the_server_image(dockerfile, services):
    # Prefect does not support a client newer than its server; both sides pin one version.
    (spec,) = [ln.split("=", 1)[1] for ln in dockerfile if ln.startswith("ARG PREFECT_SPEC=")]
    assert re.fullmatch(r"prefect==\d+\.\d+\.\d+", spec)
    assert any("pip install" in ln and '"$PREFECT_SPEC"' in ln for ln in dockerfile)
    server_image = services["prefect-server"]["image"]
    assert server_image == f"prefecthq/prefect:{spec.removeprefix('prefect==')}-python3.11"


def test_repo_location_is_shared_by_dockerfile_prefect_yaml_and_compose(
    dockerfile, prefect_project, services
):
    copies = [ln.split()[-1] for ln in dockerfile if ln.upper().startswith("COPY ")]
    assert APP_DIR in copies
    # molvae finds its bundled defaults beside the package: the repo copy must be the one imported.
    assert f"ENV PYTHONPATH={APP_DIR}" in dockerfile
    (step,) = prefect_project["pull"]
    assert step == {"prefect.deployments.steps.set_working_directory": {"directory": APP_DIR}}
    assert services["deploy"]["working_dir"] == APP_DIR
    entrypoint = services["mlflow"]["entrypoint"]
    assert entrypoint[-1] == f"{APP_DIR}/docker/mlflow-entrypoint.sh"
    # Every host file compose mounts exists in the repo.
    for service in services.values():
        for volume in service.get("volumes") or []:
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DOCKER / source).resolve().is_file(), volume


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = {
        ln.strip() for ln in (ROOT / ".dockerignore").read_text().splitlines() if not ln.startswith("#")
    }
    assert {".venv", "runs", "mlruns.db", "mlartifacts", ".git", "**/.env"} <= patterns
    assert not {"docker", "pipelines", "prefect.yaml", "pyproject.toml", "data"} & patterns


def test_mlflow_server_command(services, env_example):
    mlflow = services["mlflow"]
    args = command(mlflow)
    assert args[:2] == ["mlflow", "server"]
    assert flag_value(args, "--app-name") == "basic-auth"
    assert "--serve-artifacts" in args
    assert flag_value(args, "--artifacts-destination") == "/mlartifacts"
    # The store URI carries the database password, so it is in the environment, not the command.
    assert "--backend-store-uri" not in args and not any("${POSTGRES_PASSWORD}" in a for a in args)
    assert environment(mlflow)["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql://")
    assert flag_value(args, "--host") == "0.0.0.0"
    assert "/mlartifacts" in {v.split(":")[1] for v in mlflow["volumes"]}
    # The worker reaches MLflow as http://mlflow:5000: that Host header must be allowed
    # (MLflow matches each entry exactly, or with fnmatch when it has a '*').
    worker_host = urlsplit(environment(services["prefect-worker"])["MLFLOW_TRACKING_URI"]).netloc
    assert worker_host == "mlflow:5000"
    hosts = flag_value(args, "--allowed-hosts")
    for env in (env_example, {}):  # with docker/.env as shipped, and with compose's default
        allowed = interpolate(hosts, env).split(",")
        assert "*" not in allowed
        for host in (worker_host, "localhost:5000", "127.0.0.1:5000"):
            assert any(fnmatch.fnmatch(host, a) if "*" in a else host == a for a in allowed), (host, env)


def test_worker_and_deploy_use_the_servers_and_the_pool(services, deployment):
    worker_env = environment(services["prefect-worker"])
    assert worker_env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    assert worker_env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert ONLY_REFS.match(worker_env["MLFLOW_TRACKING_USERNAME"])
    assert ONLY_REFS.match(worker_env["MLFLOW_TRACKING_PASSWORD"])
    worker = command(services["prefect-worker"])
    pool = deployment["work_pool"]["name"]
    assert worker[:3] == ["prefect", "worker", "start"]
    assert flag_value(worker, "--pool") == pool == "molvae-pool"
    assert flag_value(worker, "--type") == "process"

    script = command(services["deploy"])[-1]
    assert f"prefect work-pool create {pool} --type process || true" in script
    assert "deploy --all" in script
    assert environment(services["deploy"])["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    for name in ("prefect-server", "mlflow"):
        ports = [str(p) for p in services[name]["ports"]]
        assert any(p.endswith(":4200:4200" if name == "prefect-server" else ":5000:5000") for p in ports)
    server_env = environment(services["prefect-server"])
    assert server_env["PREFECT_API_DATABASE_CONNECTION_URL"].startswith("postgresql+asyncpg://")
    assert server_env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"


def test_postgres_creates_the_prefect_and_mlflow_databases(services):
    sql = (DOCKER / "postgres-init.sql").read_text()
    created = set(re.findall(r"(?im)^\s*CREATE DATABASE (\w+);", sql))
    assert {"prefect", "mlflow", "mlflow_auth"} <= created
    texts = [
        *environment(services["prefect-server"]).values(),
        *environment(services["mlflow"]).values(),
        *command(services["mlflow"]),
    ]
    used = {db for t in texts for db in re.findall(r"@postgres:5432/(\w+)", t)}
    assert used == {"prefect", "mlflow", "mlflow_auth"}


def test_prefect_deployment(deployment, prefect_project):
    from prefect.client.schemas.schedules import CronSchedule

    assert deployment["name"] == "molecular-generation-nightly"
    assert re.fullmatch(r"[\w./-]+\.py:[A-Za-z_]\w*", deployment["entrypoint"])
    assert deployment["entrypoint"] == "pipelines/molecules.py:molecular_generation"
    assert deployment["parameters"] == {}
    assert deployment["work_pool"]["name"] == "molvae-pool"
    (schedule,) = deployment["schedules"]
    assert schedule["timezone"] == "UTC"
    assert schedule["cron"] == "0 2 * * *"
    fields = schedule["cron"].split()
    assert len(fields) == 5
    assert all(re.fullmatch(r"[\d*,/-]+|[A-Za-z]{3}", f) for f in fields)
    CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])  # Prefect's own validation


def test_entrypoint_names_a_function_of_its_file(deployment):
    path, _, function = deployment["entrypoint"].partition(":")
    source = ROOT / path
    if not source.exists():
        pytest.skip(f"{path} not written yet")
    tree = ast.parse(source.read_text())
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert function in defined


def _deploy_override_script(services) -> str:
    script = command(services["deploy"])[-1]
    match = re.search(r"<<'PY'\n(.*?)\n\s*PY\n", script, re.S)
    assert match, "the deploy command lost its cron-override step"
    return textwrap.dedent(match.group(1))


@pytest.mark.parametrize(("molvae_cron", "expected"), [("30 3 * * 1", "30 3 * * 1"), ("", "0 2 * * *")])
def test_deploy_service_applies_molvae_cron(services, tmp_path, molvae_cron, expected):
    out = tmp_path / "rendered.yaml"
    script = _deploy_override_script(services).replace("/tmp/prefect.yaml", str(out))
    (tmp_path / "prefect.yaml").write_text((ROOT / "prefect.yaml").read_text())
    env = {**os.environ, "MOLVAE_CRON": molvae_cron}
    subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, check=True)
    (rendered,) = yaml.safe_load(out.read_text())["deployments"]
    assert [s["cron"] for s in rendered["schedules"]] == [expected]
    assert rendered["entrypoint"] == "pipelines/molecules.py:molecular_generation"


def _run_entrypoint(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    # Read the file the way mlflow.server.auth.config.read_auth_config does (a default
    # ConfigParser, section [mlflow]); importing that module needs the mlflow[auth] extra.
    probe = (
        "import configparser, os; c = configparser.ConfigParser(); "
        "c.read(os.environ['MLFLOW_AUTH_CONFIG_PATH']); m = c['mlflow']; "
        "print(m['admin_username'], m['admin_password'], m['database_uri'], m['default_permission'], "
        "sep='\\n')"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    return subprocess.run(
        ["sh", str(DOCKER / "mlflow-entrypoint.sh"), sys.executable, "-c", probe],
        env={**base, "MLFLOW_AUTH_CONFIG_PATH": str(tmp_path / "auth" / "basic_auth.ini"), **env},
        capture_output=True,
        text=True,
    )


def test_mlflow_entrypoint_writes_the_auth_config_mlflow_reads(tmp_path):
    password = "p%w d#;x=1 long"  # '%' would break configparser unescaped; MLflow wants >= 12
    done = _run_entrypoint(
        tmp_path,
        MLFLOW_ADMIN_USERNAME="root-admin",
        MLFLOW_ADMIN_PASSWORD=password,
        MLFLOW_AUTH_DATABASE_URI="sqlite:///auth.db",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["root-admin", password, "sqlite:///auth.db", "READ"]
    assert (tmp_path / "auth" / "basic_auth.ini").stat().st_mode & 0o077 == 0


def test_mlflow_entrypoint_refuses_to_start_without_credentials(tmp_path):
    done = _run_entrypoint(tmp_path, MLFLOW_ADMIN_USERNAME="admin", MLFLOW_AUTH_DATABASE_URI="sqlite://")
    assert done.returncode != 0
    assert "MLFLOW_ADMIN_PASSWORD" in done.stderr
    assert not (tmp_path / "auth" / "basic_auth.ini").exists()


def test_mlflow_entrypoint_refuses_a_password_mlflow_would_reject(tmp_path):
    done = _run_entrypoint(tmp_path, MLFLOW_ADMIN_USERNAME="admin", MLFLOW_ADMIN_PASSWORD="change-me",
                           MLFLOW_AUTH_DATABASE_URI="sqlite://")
    assert done.returncode == 1 and "at least 12 characters" in done.stderr
    assert not (tmp_path / "auth" / "basic_auth.ini").exists()
