"""docker-compose.yaml is valid Compose and cannot drift from the local cluster's settings.

The schema is the Compose specification's, as vendored by ``check-jsonschema``
(``--builtin-schema vendor.compose-spec``); the settings are ``deploy/cluster.env`` as
``scripts/local_cluster.py`` reads them.
"""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess
import sys
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "docker-compose.yaml"

# Keys of deploy/cluster.env that containers may set differently: host names, paths, ports.
CONTAINER_OVERRIDES = {
    "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
    "AIRFLOW__CELERY__RESULT_BACKEND",
    "AIRFLOW__CELERY__BROKER_URL",
    "AIRFLOW__API__HOST",
    "AIRFLOW__API__PORT",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW_CONN_AWS_DEFAULT",
}


def _local_cluster() -> Any:
    spec = importlib.util.spec_from_file_location(
        "local_cluster_for_compose", REPO / "scripts" / "local_cluster.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


local_cluster = _local_cluster()


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text()))


@pytest.fixture(scope="module")
def settings() -> dict[str, str]:
    return dict(local_cluster.load_env_file(REPO / "deploy" / "cluster.env"))


def _validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.compose-spec", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_compose_file_validates_against_the_compose_specification(tmp_path: Path) -> None:
    done = _validate(COMPOSE)
    assert done.returncode == 0, done.stdout + done.stderr
    # The same check rejects a service with a misspelt key, so it really reads the schema.
    broken = yaml.safe_load(COMPOSE.read_text())
    broken["services"]["redis"]["healthchek"] = broken["services"]["redis"].pop("healthcheck")
    bad = tmp_path / "docker-compose.yaml"
    bad.write_text(yaml.safe_dump(broken))
    done = _validate(bad)
    assert done.returncode != 0
    assert "healthchek" in done.stdout + done.stderr


def _airflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in compose["services"].items() if n.startswith("airflow-")}


def test_same_airflow_version_everywhere(compose: dict[str, Any], settings: dict[str, str]) -> None:
    version = settings["AIRFLOW_VERSION"]
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = [d for d in project["optional-dependencies"]["cluster"] if d.startswith("apache-airflow[")]
    assert pins and pins[0].endswith(f"=={version}"), pins
    dockerfile = (REPO / "deploy" / "airflow.Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={version}\n" in dockerfile
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}" in dockerfile
    for name, service in _airflow_services(compose).items():
        assert service["build"]["dockerfile"] == "deploy/airflow.Dockerfile", name
        assert service["build"]["args"]["AIRFLOW_VERSION"] == version, name
        assert service["build"]["args"]["PYTHON_VERSION"] == settings["AIRFLOW_PYTHON_VERSION"], name


def test_same_components_and_executor(compose: dict[str, Any], settings: dict[str, str]) -> None:
    cluster = local_cluster.LocalCluster(settings, REPO / ".cluster-unused")
    services = _airflow_services(compose)
    commands: dict[str, list[str]] = {}
    for name, service in services.items():
        if name != "airflow-init":
            commands.setdefault(str(service["command"]), []).append(name)
    local = {
        "api-server": 1,
        "scheduler": 1,
        "dag-processor": 1,
        "triggerer": len(cluster.triggerers),
        "celery worker": len(cluster.workers),
    }
    assert {cmd: len(names) for cmd, names in commands.items()} == local
    assert len(cluster.triggerers) == 2
    assert {"postgres", "redis", "bedrock-emulator", "airflow-init"} <= set(compose["services"])
    for name, service in services.items():
        assert service["env_file"] == ["deploy/cluster.env"], name
        env = service.get("environment", {})
        # Nothing the env file decides is changed, except where containers must differ.
        assert set(env) & set(settings) <= CONTAINER_OVERRIDES, (name, set(env) & set(settings))
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env, name
    assert settings["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor"


def test_every_service_has_a_health_check(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "airflow-init":  # a one-shot job: the others wait for it to complete
            assert service["depends_on"]["postgres"]["condition"] == "service_healthy"
            continue
        assert service.get("healthcheck", {}).get("test"), f"{name} has no health check"


def _without_endpoints(conn: dict[str, Any]) -> tuple[dict[str, Any], list[int]]:
    conn = json.loads(json.dumps(conn))
    ports = []
    extra = conn["extra"]
    for holder in (extra, extra["service_config"]["s3"]):
        ports.append(urllib.parse.urlsplit(holder.pop("endpoint_url")).port)
    return conn, ports


def test_same_aws_connection(compose: dict[str, Any], settings: dict[str, str]) -> None:
    local, _ = _without_endpoints(json.loads(settings["AIRFLOW_CONN_AWS_DEFAULT"]))
    emulator = compose["services"]["bedrock-emulator"]
    for name, service in _airflow_services(compose).items():
        conn, ports = _without_endpoints(json.loads(service["environment"]["AIRFLOW_CONN_AWS_DEFAULT"]))
        assert conn == local, name
        published = [int(p.rsplit(":", 1)[1]) for p in emulator["ports"]]
        assert ports == published, name
    args = emulator.get("command") or re.findall(
        r'"([^"]+)"', (REPO / "deploy" / "emulator.Dockerfile").read_text().split("CMD", 1)[1]
    )
    assert args[args.index("--port") + 1] == str(ports[0])
    assert args[args.index("--s3-port") + 1] == str(ports[1])


def test_emulator_image_is_built_and_needs_no_source_mount(compose: dict[str, Any]) -> None:
    emulator = compose["services"]["bedrock-emulator"]
    assert emulator["build"] == {"context": ".", "dockerfile": "deploy/emulator.Dockerfile"}
    assert all(not str(v).startswith(".") for v in emulator.get("volumes", [])), emulator["volumes"]
    dockerfile = (REPO / "deploy" / "emulator.Dockerfile").read_text()
    assert "--no-deps" in dockerfile
    assert "apache-airflow" not in dockerfile


def _emulator_site(target: Path) -> Path:
    """A site directory holding only the emulator extra's dependency closure (as symlinks).

    What the emulator image has: the package (from the checkout) and exactly the
    distributions ``pip install`` of the extra brings, with their metadata.
    """
    from importlib import metadata

    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    todo = [Requirement(r) for r in project["optional-dependencies"]["emulator"]]
    seen: dict[str, metadata.Distribution] = {}
    while todo:
        req = todo.pop()
        key = req.name.lower().replace("_", "-")
        if key in seen:
            continue
        seen[key] = metadata.distribution(req.name)
        for raw in seen[key].requires or []:
            dep = Requirement(raw)
            envs = [{"extra": e} for e in req.extras] or [{"extra": ""}]
            if dep.marker is None or any(dep.marker.evaluate(env) for env in envs):
                todo.append(dep)
    target.mkdir()
    for dist in seen.values():
        tops = {str(f).split("/", 1)[0] for f in dist.files or [] if not str(f).startswith("..")}
        for top in tops:
            if top.endswith(".pth") or top == "__pycache__" or top.startswith("_editable"):
                continue
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (target / top).exists():
                (target / top).symlink_to(source)
    return target


def test_the_emulator_trains_a_job_with_only_its_extra_installed(tmp_path: Path) -> None:
    """The emulator image installs the package with --no-deps plus the "emulator" extra.

    Here only that extra's dependency closure is importable (no Airflow, and no orjson if
    the extra forgot it), and a job must still train to the end.
    """
    site = _emulator_site(tmp_path / "site")
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "airflow_bedrock_ft").symlink_to(REPO / "airflow_bedrock_ft")
    demo = REPO / "airflow_bedrock_ft" / "data" / "demo" / "train.jsonl"
    script = f"""
import importlib.util, sys, time
assert importlib.util.find_spec("airflow") is None, "Airflow is importable"
from airflow_bedrock_ft.emulator import start_emulator
with start_emulator(port=0, s3_port=0, time_scale=0) as emu:
    s3, bedrock = emu.client("s3"), emu.client("bedrock")
    s3.create_bucket(Bucket="emulator-only")
    s3.upload_file({str(demo)!r}, "emulator-only", "train.jsonl")
    arn = bedrock.create_model_customization_job(
        jobName="only-the-extra", customModelName="only-the-extra",
        roleArn="arn:aws:iam::123456789012:role/R", baseModelIdentifier="meta.llama3-1-8b-instruct-v1:0:128k",
        trainingDataConfig={{"s3Uri": "s3://emulator-only/train.jsonl"}},
        outputDataConfig={{"s3Uri": "s3://emulator-only/out/"}}, hyperParameters={{"epochCount": "1"}},
    )["jobArn"]
    for _ in range(600):
        job = bedrock.get_model_customization_job(jobIdentifier=arn)
        if job["status"] != "InProgress":
            break
        time.sleep(0.1)
    print(job["status"], job.get("failureMessage", ""))
"""
    env = {"PYTHONPATH": f"{site}:{pkg}", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-S", "-c", script],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=tmp_path,
        env=env,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "Completed", done.stdout + done.stderr


def test_env_file_lines_the_three_readers_disagree_on_are_rejected(tmp_path: Path) -> None:
    path = tmp_path / "bad.env"
    path.write_text('GOOD=1\n# comment\nBAD="double quoted"\n')
    with pytest.raises(local_cluster.SettingsError, match=r"bad\.env:3: expected KEY=value"):
        local_cluster.load_env_file(path)
    path.write_text("A='{\"json\": 1}'\nB=plain\nC=\n")
    assert local_cluster.load_env_file(path) == {"A": '{"json": 1}', "B": "plain", "C": ""}
