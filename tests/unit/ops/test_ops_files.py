"""Structural checks of the deployment files: compose, Kubernetes, Prometheus, Grafana, Docker.

These do not start anything; they catch the mistakes that otherwise only show at deploy time: a
selector that matches no pod, a probe that was dropped, a manifest missing from kustomization, an
alert without a `for`, a dashboard panel with no query.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from kuekan.settings import PROD_SECRETS, Settings

REPO_ROOT = Path(__file__).resolve().parents[3]
OPS = REPO_ROOT / "ops"
K8S = OPS / "k8s"
NAMESPACE = "kuekan"

SETTINGS_ENV = (
    "KUEKAN_ENV",
    "KUEKAN_DATABASE_URL",
    "KUEKAN_REDIS_URL",
    "KUEKAN_JWT_KEYS",
    "KUEKAN_LINE_CHANNEL_SECRET",
    "KUEKAN_LINE_CHANNEL_ACCESS_TOKEN",
    "KUEKAN_RATE_LIMITS",
)
SECRET_ENV = PROD_SECRETS
WORKER_HEALTH_CHECK = ["python", "-m", "kuekan", "worker", "--health-check"]
DURATION = re.compile(r"^\d+[smhd]$")


def _load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def _k8s_docs() -> list[tuple[str, dict[str, Any]]]:
    """Every document of every manifest in ops/k8s, with the file it came from."""
    docs: list[tuple[str, dict[str, Any]]] = []
    for path in sorted(K8S.glob("*.yaml")):
        loaded = yaml.safe_load_all(path.read_text(encoding="utf-8"))
        docs.extend((path.name, doc) for doc in loaded if doc is not None)
    return docs


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    return {doc["metadata"]["name"]: doc for _, doc in _k8s_docs() if doc["kind"] == kind}


def _deployment(name: str) -> dict[str, Any]:
    deployments = _by_kind("Deployment")
    assert name in deployments, f"no Deployment {name}; have {sorted(deployments)}"
    return deployments[name]


def _pod_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def _selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return bool(selector) and all(labels.get(key) == value for key, value in selector.items())


def _balanced(expr: str) -> bool:
    pairs = {")": "(", "]": "[", "}": "{"}
    stack: list[str] = []
    for char in expr:
        if char in "([{":
            stack.append(char)
        elif char in pairs and (not stack or stack.pop() != pairs[char]):
            return False
    return not stack


# ---------------------------------------------------------------- compose


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data: dict[str, Any] = _load_yaml(OPS / "compose.yaml")
    return data


def test_compose_has_exactly_the_five_services(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == {"postgres", "redis", "migrate", "api", "worker"}


def test_compose_pins_postgres_16_and_redis_7(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["postgres"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("name", ["postgres", "redis", "api", "worker"])
def test_compose_long_running_services_have_healthchecks(
    compose: dict[str, Any], name: str
) -> None:
    healthcheck = compose["services"][name]["healthcheck"]
    assert healthcheck.get("test"), f"{name} has an empty healthcheck"
    assert not healthcheck.get("disable", False)


@pytest.mark.parametrize("name", ["api", "worker"])
def test_compose_app_waits_for_healthy_stores_and_finished_migration(
    compose: dict[str, Any], name: str
) -> None:
    depends_on = compose["services"][name]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"
    assert depends_on["redis"]["condition"] == "service_healthy"
    assert depends_on["migrate"]["condition"] == "service_completed_successfully"


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_compose_app_services_get_every_setting(compose: dict[str, Any], name: str) -> None:
    environment = compose["services"][name]["environment"]
    assert set(SETTINGS_ENV) <= set(environment)
    assert "@postgres:" in environment["KUEKAN_DATABASE_URL"]
    assert "//redis:" in environment["KUEKAN_REDIS_URL"]


@pytest.mark.parametrize("name", ["migrate", "api", "worker"])
def test_compose_names_every_prod_variable_and_its_key_ids_agree(
        compose: dict[str, Any], name: str) -> None:
    environment = compose["services"][name]["environment"]
    assert set(PROD_SECRETS) <= set(environment)
    default = re.compile(r"^\$\{[A-Z_]+:-(.*)\}$")
    keys = default.match(environment["KUEKAN_JWT_KEYS"])
    kid = default.match(environment["KUEKAN_JWT_ACTIVE_KID"])
    assert keys and kid
    kids = {pair.split(":", 1)[0] for pair in keys.group(1).split(",")}
    assert kid.group(1) in kids, (kid.group(1), kids)


def test_runbook_names_every_prod_variable() -> None:
    runbook = (OPS / "RUNBOOK.md").read_text(encoding="utf-8")
    section = runbook.split("## Secrets", 1)[1].split("\n## ", 1)[0]
    missing = [v for v in PROD_SECRETS if f"`{v}`" not in section]
    assert not missing, missing
    assert Settings().jwt_active_kid in Settings().jwt_keys


def test_compose_migrate_runs_migrate_then_seed(compose: dict[str, Any]) -> None:
    migrate = compose["services"]["migrate"]
    script = " ".join([*migrate.get("entrypoint", []), *migrate["command"]])
    assert "kuekan migrate" in script
    assert "kuekan seed" in script
    assert script.index("kuekan migrate") < script.index("kuekan seed")
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_worker_runs_worker_and_probes_its_heartbeat(compose: dict[str, Any]) -> None:
    worker = compose["services"]["worker"]
    assert worker["command"] == ["worker"]
    assert worker["healthcheck"]["test"][1:] == WORKER_HEALTH_CHECK


def test_compose_api_serves_on_port_8000_and_probes_healthz(compose: dict[str, Any]) -> None:
    api = compose["services"]["api"]
    command: list[str] = api["command"]
    assert command[0] == "serve"
    assert command[command.index("--port") + 1] == "8000"
    assert "/healthz" in " ".join(api["healthcheck"]["test"])


# ---------------------------------------------------------------- kubernetes


def test_k8s_every_document_has_api_version_kind_and_name() -> None:
    docs = _k8s_docs()
    assert len(docs) >= 12
    for filename, doc in docs:
        assert isinstance(doc, dict), filename
        assert doc.get("apiVersion"), filename
        assert doc.get("kind"), filename
        assert doc.get("metadata", {}).get("name"), filename


def test_k8s_namespaced_objects_live_in_the_kuekan_namespace() -> None:
    cluster_scoped = {"Namespace", "Kustomization"}
    for filename, doc in _k8s_docs():
        if doc["kind"] in cluster_scoped:
            continue
        assert doc["metadata"].get("namespace") == NAMESPACE, filename
    assert NAMESPACE in _by_kind("Namespace")


@pytest.mark.parametrize("name", ["kuekan-api", "kuekan-worker"])
def test_k8s_deployment_selector_matches_its_pod_labels(name: str) -> None:
    deployment = _deployment(name)
    assert _selects(deployment["spec"]["selector"]["matchLabels"], _pod_labels(deployment))


@pytest.mark.parametrize("name", ["kuekan-api", "kuekan-worker"])
def test_k8s_deployment_containers_are_probed_and_bounded(name: str) -> None:
    containers = _deployment(name)["spec"]["template"]["spec"]["containers"]
    assert containers
    for container in containers:
        assert container.get("livenessProbe"), f"{name}/{container['name']} lacks liveness"
        assert container.get("readinessProbe"), f"{name}/{container['name']} lacks readiness"
        resources = container["resources"]
        assert {"cpu", "memory"} <= set(resources["requests"])
        assert {"cpu", "memory"} <= set(resources["limits"])


@pytest.mark.parametrize("name", ["kuekan-api", "kuekan-worker"])
def test_k8s_deployment_runs_non_root_on_a_read_only_filesystem(name: str) -> None:
    pod = _deployment(name)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    for container in pod["containers"]:
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True
        assert security["allowPrivilegeEscalation"] is False
        assert security.get("runAsUser", pod["securityContext"]["runAsUser"]) != 0


def test_k8s_api_probes_readyz_and_healthz_with_three_replicas_rolling() -> None:
    api = _deployment("kuekan-api")
    container = api["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert api["spec"]["replicas"] == 3
    assert api["spec"]["strategy"]["type"] == "RollingUpdate"
    port_names = {port["name"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["port"] in port_names


def test_k8s_worker_liveness_runs_the_heartbeat_health_check() -> None:
    container = _deployment("kuekan-worker")["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["worker"]
    assert container["livenessProbe"]["exec"]["command"] == WORKER_HEALTH_CHECK


def test_k8s_hpas_target_existing_deployments() -> None:
    deployments = _by_kind("Deployment")
    hpas = _by_kind("HorizontalPodAutoscaler")
    assert {hpa["spec"]["scaleTargetRef"]["name"] for hpa in hpas.values()} == set(deployments)
    for name, hpa in hpas.items():
        assert hpa["apiVersion"] == "autoscaling/v2", name
        target = hpa["spec"]["scaleTargetRef"]
        assert target["kind"] == "Deployment", name
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"], name


def test_k8s_api_hpa_scales_on_cpu_and_requests() -> None:
    metrics = _by_kind("HorizontalPodAutoscaler")["kuekan-api"]["spec"]["metrics"]
    kinds = {metric["type"] for metric in metrics}
    assert "Resource" in kinds
    assert any(m["type"] == "Resource" and m["resource"]["name"] == "cpu" for m in metrics)
    assert any(m["type"] == "Pods" and "requests" in m["pods"]["metric"]["name"] for m in metrics)


def test_k8s_each_pdb_selects_exactly_one_deployment() -> None:
    deployments = _by_kind("Deployment")
    pdbs = _by_kind("PodDisruptionBudget")
    covered: set[str] = set()
    for name, pdb in pdbs.items():
        selector = pdb["spec"]["selector"]["matchLabels"]
        matched = [d for d, dep in deployments.items() if _selects(selector, _pod_labels(dep))]
        assert len(matched) == 1, f"PDB {name} selects {matched}"
        covered.update(matched)
    assert covered == set(deployments)


def test_k8s_api_service_selects_api_pods_on_a_named_container_port() -> None:
    service = _by_kind("Service")["kuekan-api"]
    api = _deployment("kuekan-api")
    worker = _deployment("kuekan-worker")
    assert _selects(service["spec"]["selector"], _pod_labels(api))
    assert not _selects(service["spec"]["selector"], _pod_labels(worker))
    port_names = {p["name"] for p in api["spec"]["template"]["spec"]["containers"][0]["ports"]}
    for port in service["spec"]["ports"]:
        assert port["targetPort"] in port_names


def test_k8s_env_sources_exist_and_cover_every_setting() -> None:
    configmaps = _by_kind("ConfigMap")
    secrets = _by_kind("Secret")
    pod_specs = [dep["spec"]["template"]["spec"] for dep in _by_kind("Deployment").values()]
    pod_specs += [job["spec"]["template"]["spec"] for job in _by_kind("Job").values()]
    for pod in pod_specs:
        for container in pod["containers"]:
            provided: set[str] = set()
            for source in container["envFrom"]:
                if "configMapRef" in source:
                    provided |= set(configmaps[source["configMapRef"]["name"]]["data"])
                if "secretRef" in source:
                    provided |= set(secrets[source["secretRef"]["name"]]["stringData"])
            assert set(SETTINGS_ENV) <= provided, container["name"]


def test_k8s_secret_example_holds_only_placeholders() -> None:
    (secret,) = _by_kind("Secret").values()
    string_data: dict[str, str] = secret["stringData"]
    assert set(SECRET_ENV) == set(string_data)
    assert all("REPLACE_ME" in value for value in string_data.values())


def test_k8s_migrate_job_runs_migrate_once() -> None:
    job = _by_kind("Job")["kuekan-migrate"]
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert pod["containers"][0]["args"] == ["migrate"]
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_kustomization_lists_every_manifest_and_only_existing_files() -> None:
    kustomization = _load_yaml(K8S / "kustomization.yaml")
    resources: list[str] = kustomization["resources"]
    assert len(resources) == len(set(resources))
    for resource in resources:
        assert (K8S / resource).is_file(), resource
    # The example Secret is a template: applying its placeholders would clobber the real one.
    expected = {
        path.name
        for path in K8S.glob("*.yaml")
        if path.name != "kustomization.yaml" and not path.name.endswith(".example.yaml")
    }
    assert set(resources) == expected


# ---------------------------------------------------------------- prometheus


def _alert_rules() -> list[dict[str, Any]]:
    data = _load_yaml(OPS / "prometheus" / "alerts.yaml")
    groups: list[dict[str, Any]] = data["groups"]
    assert groups
    rules: list[dict[str, Any]] = []
    for group in groups:
        assert group["name"]
        assert group["rules"], group["name"]
        rules.extend(group["rules"])
    return rules


def test_prometheus_every_alert_has_expr_for_and_severity() -> None:
    rules = _alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert _balanced(rule["expr"]), rule["alert"]
        assert DURATION.match(rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"page", "ticket"}
        assert rule["annotations"]["summary"]


@pytest.mark.parametrize(
    "needle",
    [
        "litestar_request_duration_seconds_bucket",
        'status_code=~"5.."',
        "kuekan_outbox_lag_seconds) > 60",
        "kuekan_line_quota_remaining",
        "kuekan_line_429_total",
        "kuekan_jobs_total",
        'up{job="kuekan-api"}',
    ],
)
def test_prometheus_alerts_cover_the_kpis(needle: str) -> None:
    assert any(needle in rule["expr"] for rule in _alert_rules())


def test_prometheus_latency_and_error_thresholds_are_the_kpis() -> None:
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in _alert_rules()}
    assert exprs["KuekanApiLatencyP95High"].startswith("histogram_quantile(0.95,")
    assert exprs["KuekanApiLatencyP95High"].endswith("> 0.2")
    assert exprs["KuekanApiErrorRateHigh"].endswith("> 0.001")


def test_prometheus_scrapes_api_and_worker_and_loads_the_rules() -> None:
    config = _load_yaml(OPS / "prometheus" / "prometheus.yaml")
    for rule_file in config["rule_files"]:
        assert (OPS / "prometheus" / rule_file).is_file()
    jobs = {scrape["job_name"] for scrape in config["scrape_configs"]}
    assert {"kuekan-api", "kuekan-worker"} <= jobs
    referenced = set()
    for rule in _alert_rules():
        referenced |= set(re.findall(r'job="([^"]+)"', rule["expr"]))
    assert referenced <= jobs


# ---------------------------------------------------------------- grafana


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((OPS / "grafana" / "kuekan.json").read_text("utf-8"))
    return data


def _query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_grafana_dashboard_is_modern_with_unique_panel_ids(dashboard: dict[str, Any]) -> None:
    assert dashboard["schemaVersion"] >= 36
    ids = [panel["id"] for panel in dashboard["panels"]]
    ids += [sub["id"] for panel in dashboard["panels"] for sub in panel.get("panels", [])]
    assert len(ids) == len(set(ids))


def test_grafana_every_panel_queries_the_templated_datasource(dashboard: dict[str, Any]) -> None:
    variables = {var["name"]: var for var in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    panels = _query_panels(dashboard)
    assert panels
    for panel in panels:
        assert panel["targets"], panel["title"]
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip(), panel["title"]
            assert _balanced(target["expr"]), panel["title"]


@pytest.mark.parametrize(
    "metric",
    [
        "litestar_requests_total",
        "litestar_request_duration_seconds_bucket",
        "kuekan_checkins_total",
        "kuekan_awards_total",
        "kuekan_redemptions_total",
        "kuekan_refusals_total",
        "kuekan_fraud_alerts_total",
        "kuekan_idempotent_replays_total",
        "kuekan_outbox_lag_seconds",
        "kuekan_outbox_pending",
        "kuekan_line_429_total",
        "kuekan_line_quota_remaining",
        "kuekan_jobs_total",
        "kuekan_job_duration_seconds_bucket",
    ],
)
def test_grafana_dashboard_shows_metric(dashboard: dict[str, Any], metric: str) -> None:
    exprs = [t["expr"] for panel in _query_panels(dashboard) for t in panel["targets"]]
    assert any(metric in expr for expr in exprs)


@pytest.mark.parametrize("quantile", ["0.5", "0.95", "0.99"])
def test_grafana_has_duration_quantile_by_route(dashboard: dict[str, Any], quantile: str) -> None:
    exprs = [t["expr"] for panel in _query_panels(dashboard) for t in panel["targets"]]
    assert any(
        expr.startswith(f"histogram_quantile({quantile}, sum by (le, path)") for expr in exprs
    )


# ---------------------------------------------------------------- docker


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs with continuation lines joined and comments dropped."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


def test_dockerfile_is_multi_stage_on_python_311_slim() -> None:
    froms = [args for keyword, args in _dockerfile_instructions() if keyword == "FROM"]
    assert len(froms) >= 2
    for args in froms:
        image = args.split()[0]
        assert image == "python:3.11-slim"
    assert any(
        "--from=" in args for keyword, args in _dockerfile_instructions() if keyword == "COPY"
    )


def test_dockerfile_runs_as_a_non_root_user() -> None:
    users = [args for keyword, args in _dockerfile_instructions() if keyword == "USER"]
    assert users
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}


def test_dockerfile_entrypoint_is_the_kuekan_cli() -> None:
    instructions = dict(_dockerfile_instructions())
    assert json.loads(instructions["ENTRYPOINT"]) == ["python", "-m", "kuekan"]
    assert json.loads(instructions["CMD"])[0] == "serve"
    assert "/healthz" in instructions["HEALTHCHECK"]
    assert "8000" in instructions["EXPOSE"].split()


def test_dockerignore_keeps_the_venv_and_git_out() -> None:
    ignored = (REPO_ROOT / ".dockerignore").read_text(encoding="utf-8").split()
    assert {".git", ".venv"} <= set(ignored)


# ---------------------------------------------------------------- portability

MACHINE_PATH = re.compile(r"(?<![\w.$-])/(work|root|home|Users)(/|\b)")


def _shipped_files() -> list[Path]:
    files = [path for path in OPS.rglob("*") if path.is_file()]
    return [*files, REPO_ROOT / "Dockerfile", REPO_ROOT / ".dockerignore"]


def test_no_ops_file_mentions_a_path_of_this_machine() -> None:
    offenders = [
        str(path.relative_to(REPO_ROOT))
        for path in _shipped_files()
        if MACHINE_PATH.search(path.read_text(encoding="utf-8"))
    ]
    assert offenders == []


def test_no_ops_file_names_a_registry_host() -> None:
    images = []
    for path in _shipped_files():
        text = path.read_text(encoding="utf-8")
        images += re.findall(r"^\s*(?:FROM|image:)\s+(\S+)", text, flags=re.MULTILINE)
    assert images
    for image in images:
        first = image.split("/")[0]
        assert "/" not in image or ("." not in first and ":" not in first), image


def test_runbook_covers_every_procedure() -> None:
    text = (OPS / "RUNBOOK.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## (.+)$", text, flags=re.MULTILINE))
    assert {
        "Event day",
        "Redis loss",
        "DB failover",
        "JWT key rotation",
        "LINE channel token rotation",
        "Fraud spike",
        "Checking the books: check-ledger and verify-audit",
    } <= headings
    assert "KUEKAN_RATE_LIMITS" in text


def test_dockerfile_copies_what_the_package_links_to() -> None:
    """src/kuekan/config and src/kuekan/sql are links: the builder needs their targets too."""
    text = (REPO_ROOT / "Dockerfile").read_text(encoding="utf-8")
    for link in ("config", "sql"):
        assert (REPO_ROOT / "src" / "kuekan" / link).is_symlink()
        assert f"COPY {link} ./{link}" in text
    assert text.index("COPY sql ./sql") < text.index("pip wheel")


def test_no_tracked_file_reads_anything_beside_the_repository() -> None:
    """The repository holds everything it runs on: no file names the folder beside it."""
    needle = "../" + "shared"
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    offenders = [name for name in tracked
                 if (REPO_ROOT / name).is_file() and not (REPO_ROOT / name).is_symlink()
                 and needle in (REPO_ROOT / name).read_text(encoding="utf-8", errors="ignore")]
    assert offenders == []
