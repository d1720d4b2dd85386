"""The Kubernetes manifests in deploy/k8s render, validate offline and keep the operating rules.

Every target (base and each overlay) is rendered with `kubectl kustomize`, the way it is
deployed. Core objects are validated with kubernetes-validate in strict mode against its
bundled schemas (no network); KafkaTopic and ScaledObject are validated against the CRD
schemas kept in deploy/k8s/schemas. On top of schema validity the tests hold the rules of
ARCHITECTURE.md §1, §2 and §5 that a schema cannot see: non-root read-only pods with
resources and probes on the right routes, a PodDisruptionBudget per Deployment, a KafkaTopic
per contract topic, autoscalers wired to the right consumer groups, no secret value in git
outside the dev overlay.

Nothing is skipped: a missing kubectl, an object kind without a schema or a kustomize error
fails the test with the reason.
"""

from __future__ import annotations

import base64
import binascii
import copy
import functools
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from jsonschema import Draft7Validator

Manifest = dict[str, Any]

REPO = Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
CRD_SCHEMA_DIR = K8S / "schemas"

TARGETS = ("base", "overlays/dev", "overlays/production")
OVERLAYS = ("overlays/dev", "overlays/production")
# Oldest and newest Kubernetes minor the manifests must be valid for.
KUBERNETES_VERSIONS = ("1.32", "1.34")

IMAGE = "ghcr.io/mailsync/mailsync"
APP_NAMESPACE = "mailsync"
KAFKA_NAMESPACE = "kafka"
KAFKA_CLUSTER = "mailsync"
HTTP_PORT = 8080
# Migrations run before /healthz answers; the startup probe must wait at least this long.
MIGRATION_BUDGET_SECONDS = 300

SERVICES = ("ingest", "linker", "outbound", "tracking")
HTTP_SERVICES = frozenset({"linker", "tracking"})
KEDA_SCALED = frozenset({"linker", "outbound"})
HPA_SCALED = frozenset({"tracking"})

# ARCHITECTURE.md §2: every topic of the event contract.
CONTRACT_TOPICS = (
    "crm.entities.v1",
    "mail.account.commands.v1",
    "mail.accounts.v1",
    "mail.ingested.v1",
    "mail.threads.v1",
    "mail.thread.commands.v1",
    "mail.send.commands.v1",
    "mail.outbound.v1",
    "mail.tracking.v1",
    "mail.deadletter.v1",
)

# ARCHITECTURE.md §1, "reads" column.
CONSUMED_TOPICS = {
    "ingest": frozenset({"mail.account.commands.v1"}),
    "linker": frozenset(
        {"mail.ingested.v1", "crm.entities.v1", "mail.thread.commands.v1", "mail.outbound.v1"}
    ),
    "outbound": frozenset({"mail.send.commands.v1", "mail.thread.commands.v1", "mail.accounts.v1"}),
    "tracking": frozenset({"mail.outbound.v1"}),
}

# Each service gets the secrets it uses and no other (least privilege).
RAW_STORE_KEYS = frozenset(
    {"MAILSYNC_RAW_STORE_ACCESS_KEY_ID", "MAILSYNC_RAW_STORE_SECRET_ACCESS_KEY"}
)
SERVICE_SECRETS = {
    "ingest": frozenset({"MAILSYNC_DATABASE_URL", "MAILSYNC_CREDENTIALS_KEY"}) | RAW_STORE_KEYS,
    "linker": frozenset({"MAILSYNC_DATABASE_URL", "MAILSYNC_SERVICE_TOKEN"}) | RAW_STORE_KEYS,
    "outbound": frozenset(
        {"MAILSYNC_DATABASE_URL", "MAILSYNC_CREDENTIALS_KEY", "MAILSYNC_TRACKING_SIGNING_KEY"}
    )
    | RAW_STORE_KEYS,
    "tracking": frozenset(
        {"MAILSYNC_DATABASE_URL", "MAILSYNC_TRACKING_SIGNING_KEY", "MAILSYNC_SERVICE_TOKEN"}
    ),
}
SECRET_KEYS = frozenset().union(*SERVICE_SECRETS.values())
SECRET_NAME = "mailsync-secrets"
CONFIG_NAME = "mailsync-config"
CONFIG_KEYS = frozenset(
    {
        "MAILSYNC_KAFKA_BOOTSTRAP",
        "MAILSYNC_RAW_STORE_URL",
        "MAILSYNC_LOG_LEVEL",
        "MAILSYNC_HTTP_HOST",
        "MAILSYNC_HTTP_PORT",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    }
)

# Every container reserves CPU and memory and is capped in memory; CPU is left unlimited on
# purpose (throttling stalls IMAP/SMTP sessions and pixel responses, see README.md).
REQUIRED_RESOURCES = (("requests", "cpu"), ("requests", "memory"), ("limits", "memory"))

# Partition counts are effectively permanent (more partitions re-key records in flight), so
# a change must be deliberate: update this table together with the README.
TOPIC_LAYOUT = {
    "crm.entities.v1": (12, "compact"),
    "mail.account.commands.v1": (12, "delete"),
    "mail.accounts.v1": (12, "delete"),
    "mail.ingested.v1": (24, "delete"),
    "mail.threads.v1": (24, "delete"),
    "mail.thread.commands.v1": (12, "delete"),
    "mail.send.commands.v1": (12, "delete"),
    "mail.outbound.v1": (12, "delete"),
    "mail.tracking.v1": (24, "delete"),
    "mail.deadletter.v1": (6, "delete"),
}

# (replicas, min.insync.replicas) per target: three brokers, except dev's single broker.
TOPIC_REPLICATION = {
    "base": (3, 2),
    "overlays/dev": (1, 1),
    "overlays/production": (3, 2),
}

# Whether the target may render a Secret. Only dev does, with throw-away values.
SECRET_RENDERED = {"base": False, "overlays/dev": True, "overlays/production": False}

CRD_SCHEMA_FILES = {
    ("kafka.strimzi.io/v1", "KafkaTopic"): "kafkatopic.kafka.strimzi.io.v1.yaml",
    ("keda.sh/v1alpha1", "ScaledObject"): "scaledobject.keda.sh.v1alpha1.yaml",
}


def _kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail(
            "kubectl is not on PATH, so deploy/k8s cannot be rendered. Install kubectl "
            "(>= 1.27, it embeds kustomize v5) and run again; these tests never skip.",
            pytrace=False,
        )
    return path


@functools.cache
def _render(target: str) -> tuple[Manifest, ...]:
    """The objects `kubectl kustomize deploy/k8s/<target>` produces, in order."""
    completed = subprocess.run(
        [_kubectl(), "kustomize", str(K8S / target)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if completed.returncode != 0:
        pytest.fail(
            f"kubectl kustomize deploy/k8s/{target} failed:\n{completed.stderr}", pytrace=False
        )
    return tuple(doc for doc in yaml.safe_load_all(completed.stdout) if doc)


@functools.cache
def _crd_schema(file_name: str) -> Manifest:
    schema: Manifest = yaml.safe_load((CRD_SCHEMA_DIR / file_name).read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    return schema


def _objects(target: str, kind: str) -> list[Manifest]:
    return [obj for obj in _render(target) if obj["kind"] == kind]


def _ref(obj: Manifest) -> str:
    metadata = obj["metadata"]
    namespace = f"{metadata['namespace']}/" if "namespace" in metadata else ""
    return f"{obj['kind']} {namespace}{metadata['name']}"


def _deployments(target: str) -> dict[str, Manifest]:
    return {obj["metadata"]["name"]: obj for obj in _objects(target, "Deployment")}


def _container(deployment: Manifest) -> Manifest:
    containers: list[Manifest] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1, f"{_ref(deployment)} must run exactly one container"
    return containers[0]


def _config_map(target: str) -> Manifest:
    maps = [m for m in _objects(target, "ConfigMap") if _generated_from(m, CONFIG_NAME)]
    assert len(maps) == 1, f"{target} must render exactly one ConfigMap {CONFIG_NAME}"
    return maps[0]


def _generated_from(obj: Manifest, name: str) -> bool:
    """Whether obj is `name` itself or its kustomize-generated `name-<hash>`."""
    actual: str = obj["metadata"]["name"]
    return actual == name or (actual.startswith(f"{name}-") and "-" not in actual[len(name) + 1 :])


def _secret_refs(container: Manifest) -> Iterator[tuple[str, str, str]]:
    """(env var, secret name, secret key) for every secretKeyRef of the container."""
    for variable in container.get("env", []):
        ref = variable.get("valueFrom", {}).get("secretKeyRef")
        if ref is not None:
            yield variable["name"], ref["name"], ref["key"]


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    match_labels: dict[str, str] = selector.get("matchLabels", {})
    return bool(match_labels) and all(labels.get(k) == v for k, v in match_labels.items())


def _topic_name(topic: Manifest) -> str:
    name: str = topic["spec"].get("topicName", topic["metadata"]["name"])
    return name


def _topic_partitions(target: str) -> dict[str, int]:
    return {_topic_name(t): t["spec"]["partitions"] for t in _objects(target, "KafkaTopic")}


def _fail_on(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("target", TARGETS)
def test_every_core_object_is_valid_kubernetes_in_strict_mode_offline(
    target: str, version: str
) -> None:
    problems = []
    for obj in _render(target):
        if (obj["apiVersion"], obj["kind"]) in CRD_SCHEMA_FILES:
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            path = ".".join(str(part) for part in error.path)
            problems.append(f"{_ref(obj)} at {path or '<root>'}: {error.message}")
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(
                f"{_ref(obj)} ({obj['apiVersion']}) has no Kubernetes {version} schema and no "
                f"CRD schema in deploy/k8s/schemas, so nothing validates it"
            )
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_every_kafka_topic_and_scaled_object_matches_its_crd_schema(target: str) -> None:
    problems = []
    checked = 0
    for obj in _render(target):
        file_name = CRD_SCHEMA_FILES.get((obj["apiVersion"], obj["kind"]))
        if file_name is None:
            continue
        checked += 1
        validator = Draft7Validator(_crd_schema(file_name))
        for error in validator.iter_errors(obj):
            path = ".".join(str(part) for part in error.absolute_path)
            problems.append(f"{_ref(obj)} at {path or '<root>'}: {error.message}")
    assert checked >= len(CONTRACT_TOPICS) + len(KEDA_SCALED), f"{target}: CRD objects missing"
    _fail_on(problems)


def _misspell_partitions(topic: Manifest) -> None:
    topic["spec"]["partition"] = topic["spec"].pop("partitions")


def _zero_partitions(topic: Manifest) -> None:
    topic["spec"]["partitions"] = 0


def _drop_topic_spec(topic: Manifest) -> None:
    del topic["spec"]


def _numeric_lag_threshold(scaled: Manifest) -> None:
    scaled["spec"]["triggers"][0]["metadata"]["lagThreshold"] = 50


def _misspell_trigger_metadata(scaled: Manifest) -> None:
    trigger = scaled["spec"]["triggers"][0]
    trigger["metdata"] = trigger.pop("metadata")


def _unnamed_scale_target(scaled: Manifest) -> None:
    scaled["spec"]["scaleTargetRef"] = {"kind": "Deployment"}


def _unknown_fallback_behavior(scaled: Manifest) -> None:
    scaled["spec"]["fallback"] = {"failureThreshold": 3, "replicas": 2, "behavior": "maximum"}


@pytest.mark.parametrize(
    ("kind", "mutate"),
    [
        pytest.param("KafkaTopic", _misspell_partitions, id="a misspelt KafkaTopic spec field"),
        pytest.param("KafkaTopic", _zero_partitions, id="a KafkaTopic with zero partitions"),
        pytest.param("KafkaTopic", _drop_topic_spec, id="a v1 KafkaTopic without spec"),
        pytest.param("ScaledObject", _numeric_lag_threshold, id="a non-string trigger value"),
        pytest.param("ScaledObject", _misspell_trigger_metadata, id="a misspelt trigger field"),
        pytest.param("ScaledObject", _unnamed_scale_target, id="a scale target without a name"),
        pytest.param("ScaledObject", _unknown_fallback_behavior, id="an unknown fallback"),
    ],
)
def test_the_crd_schemas_refuse_what_the_api_server_would_refuse(
    kind: str, mutate: Callable[[Manifest], None]
) -> None:
    obj = copy.deepcopy(_objects("base", kind)[0])
    file_name = CRD_SCHEMA_FILES[(obj["apiVersion"], kind)]
    validator = Draft7Validator(_crd_schema(file_name))
    assert not list(validator.iter_errors(obj)), "the unmodified object must be valid"
    mutate(obj)
    assert list(validator.iter_errors(obj)), f"{file_name} accepted the broken {kind}"


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_is_one_deployment_starting_its_module_from_the_one_image(
    target: str,
) -> None:
    deployments = _deployments(target)
    assert sorted(deployments) == sorted(SERVICES)
    problems = []
    for service, deployment in deployments.items():
        container = _container(deployment)
        if container.get("command") != ["python", "-m", f"mailsync_{service}"]:
            problems.append(f"{service} must start `python -m mailsync_{service}`")
        repository, _, tag = container["image"].partition(":")
        if repository != IMAGE:
            problems.append(f"{service} runs {container['image']}, not {IMAGE}")
        if target in OVERLAYS and tag in ("", "latest"):
            problems.append(f"{service} in {target} must pin an image tag, has {tag or 'none'}")
        environment = {v["name"]: v.get("value") for v in container.get("env", [])}
        if environment.get("OTEL_SERVICE_NAME") != f"mailsync-{service}":
            problems.append(f"{service} must set OTEL_SERVICE_NAME=mailsync-{service}")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_every_deployment_runs_non_root_on_a_read_only_root_filesystem(target: str) -> None:
    problems = []
    for name, deployment in _deployments(target).items():
        pod = deployment["spec"]["template"]["spec"]
        pod_context = pod.get("securityContext", {})
        container = _container(deployment)
        context = container.get("securityContext", {})
        if not (pod_context.get("runAsNonRoot") and pod_context.get("runAsUser") == 10001):
            problems.append(f"{name}: pod must run as non-root uid 10001")
        if pod_context.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod must use the RuntimeDefault seccomp profile")
        if context.get("runAsUser", 10001) == 0:
            problems.append(f"{name}: container overrides the uid to root")
        if context.get("readOnlyRootFilesystem") is not True:
            problems.append(f"{name}: root filesystem must be read-only")
        if context.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: privilege escalation must be disabled")
        if "ALL" not in context.get("capabilities", {}).get("drop", []):
            problems.append(f"{name}: all capabilities must be dropped")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: no service uses the Kubernetes API; do not mount a token")
        empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        tmp_mounts = [
            m
            for m in container.get("volumeMounts", [])
            if m["mountPath"] == "/tmp" and m["name"] in empty_dirs
        ]
        if not tmp_mounts:
            problems.append(f"{name}: /tmp must be a writable emptyDir")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_every_container_requests_cpu_and_memory_and_caps_memory(target: str) -> None:
    problems = []
    for name, deployment in _deployments(target).items():
        resources = _container(deployment).get("resources", {})
        for section, quantity in REQUIRED_RESOURCES:
            if quantity not in resources.get(section, {}):
                problems.append(f"{name}: resources.{section}.{quantity} is missing")
    _fail_on(problems)


@pytest.mark.parametrize(
    ("probe", "path"),
    [
        pytest.param("startupProbe", "/healthz", id="startup on healthz"),
        pytest.param("livenessProbe", "/healthz", id="liveness on healthz"),
        pytest.param("readinessProbe", "/readyz", id="readiness on readyz"),
    ],
)
@pytest.mark.parametrize("target", TARGETS)
def test_every_deployment_probes_the_documented_health_route(
    target: str, probe: str, path: str
) -> None:
    problems = []
    for name, deployment in _deployments(target).items():
        container = _container(deployment)
        ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
        check = container.get(probe, {}).get("httpGet")
        if check is None:
            problems.append(f"{name}: {probe} must be an HTTP GET")
            continue
        port = ports.get(check["port"], check["port"])
        if check.get("path") != path or port != HTTP_PORT:
            problems.append(f"{name}: {probe} must GET {path} on {HTTP_PORT}, not {check}")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_the_startup_probe_leaves_time_for_migrations_at_start(target: str) -> None:
    problems = []
    for name, deployment in _deployments(target).items():
        startup = _container(deployment)["startupProbe"]
        budget = startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10)
        if budget < MIGRATION_BUDGET_SECONDS:
            problems.append(f"{name}: startup probe gives up after {budget}s")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_every_deployment_has_a_pod_disruption_budget_that_allows_a_drain(target: str) -> None:
    budgets = _objects(target, "PodDisruptionBudget")
    problems = []
    for name, deployment in _deployments(target).items():
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        covering = [b for b in budgets if _selects(b["spec"]["selector"], labels)]
        if len(covering) != 1:
            problems.append(f"{name}: {len(covering)} PodDisruptionBudgets select its pods")
            continue
        # minAvailable on a one-replica Deployment would block every node drain.
        if covering[0]["spec"].get("maxUnavailable", 0) < 1:
            problems.append(f"{name}: its PodDisruptionBudget must allow one pod to be evicted")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_every_service_reads_the_shared_config_map_with_the_documented_keys(
    target: str,
) -> None:
    config = _config_map(target)
    data: dict[str, str] = config.get("data", {})
    assert set(data) >= CONFIG_KEYS, f"missing keys: {sorted(CONFIG_KEYS - set(data))}"
    assert data["MAILSYNC_HTTP_PORT"] == str(HTTP_PORT)
    assert data["MAILSYNC_HTTP_HOST"] == "0.0.0.0", "probes reach the pod IP, not loopback"
    problems = []
    for name, deployment in _deployments(target).items():
        sources = _container(deployment).get("envFrom", [])
        names = [s["configMapRef"]["name"] for s in sources if "configMapRef" in s]
        if names != [config["metadata"]["name"]]:
            problems.append(f"{name}: envFrom must be {CONFIG_NAME} only, is {names}")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_each_service_receives_exactly_the_secrets_it_needs_by_reference(target: str) -> None:
    secrets = {s["metadata"]["name"] for s in _objects(target, "Secret")}
    problems = []
    for service, deployment in _deployments(target).items():
        container = _container(deployment)
        received = set()
        for variable, secret, key in _secret_refs(container):
            received.add(variable)
            if variable != key:
                problems.append(f"{service}: {variable} reads key {key} of {secret}")
            if SECRET_RENDERED[target] and secret not in secrets:
                problems.append(f"{service}: {variable} refers to {secret}, not rendered")
            if not SECRET_RENDERED[target] and secret != SECRET_NAME:
                problems.append(f"{service}: {variable} must refer to {SECRET_NAME}")
        if received != SERVICE_SECRETS[service]:
            problems.append(f"{service}: receives {sorted(received)}")
        for variable in container.get("env", []):
            if variable["name"] in SECRET_KEYS and "value" in variable:
                problems.append(f"{service}: {variable['name']} is written in the manifest")
    _fail_on(problems)


def _visibly_for_development(value: str) -> bool:
    if "dev" in value:
        return True
    try:
        return "dev" in base64.urlsafe_b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError):
        return False


@pytest.mark.parametrize("target", TARGETS)
def test_no_secret_value_is_committed_outside_the_dev_overlay(target: str) -> None:
    secrets = _objects(target, "Secret")
    config: dict[str, str] = _config_map(target).get("data", {})
    assert not SECRET_KEYS & set(config), "a secret key sits in the ConfigMap"
    if not SECRET_RENDERED[target]:
        assert not secrets, f"{target} renders {[_ref(s) for s in secrets]}"
        return
    assert len(secrets) == 1, f"{target} must render exactly one Secret"
    assert _generated_from(secrets[0], SECRET_NAME), _ref(secrets[0])
    encoded: dict[str, str] = secrets[0].get("data", {})
    values = {key: base64.b64decode(value).decode() for key, value in encoded.items()}
    values |= secrets[0].get("stringData", {})
    # The raw store keys are optional refs: the dev overlay keeps raw MIME in a directory.
    assert set(values) == SECRET_KEYS - RAW_STORE_KEYS
    not_dev = sorted(k for k, v in values.items() if not _visibly_for_development(v))
    assert not not_dev, f"dev Secret values must read as development-only: {not_dev}"


@pytest.mark.parametrize("target", TARGETS)
def test_every_contract_topic_has_one_kafka_topic_on_the_mailsync_cluster(target: str) -> None:
    topics = _objects(target, "KafkaTopic")
    names = sorted(_topic_name(t) for t in topics)
    assert names == sorted(CONTRACT_TOPICS), "KafkaTopics and ARCHITECTURE.md §2 disagree"
    problems = []
    for topic in topics:
        if topic["metadata"].get("labels", {}).get("strimzi.io/cluster") != KAFKA_CLUSTER:
            problems.append(f"{_ref(topic)}: label strimzi.io/cluster must be {KAFKA_CLUSTER}")
        if topic["metadata"].get("namespace") != KAFKA_NAMESPACE:
            problems.append(f"{_ref(topic)}: must live in {KAFKA_NAMESPACE}, the operator's")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_topic_partitions_and_cleanup_policies_change_only_on_purpose(target: str) -> None:
    layout = {
        _topic_name(t): (t["spec"]["partitions"], t["spec"]["config"]["cleanup.policy"])
        for t in _objects(target, "KafkaTopic")
    }
    assert layout == TOPIC_LAYOUT


@pytest.mark.parametrize("target", TARGETS)
def test_topic_replication_survives_one_broker_where_there_are_three(target: str) -> None:
    expected = TOPIC_REPLICATION[target]
    problems = []
    for topic in _objects(target, "KafkaTopic"):
        actual = (topic["spec"]["replicas"], int(topic["spec"]["config"]["min.insync.replicas"]))
        if actual != expected:
            problems.append(f"{_topic_name(topic)}: (replicas, min.insync) {actual} != {expected}")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_dead_letters_outlive_every_other_time_retained_topic(target: str) -> None:
    retention = {
        _topic_name(t): int(t["spec"]["config"]["retention.ms"])
        for t in _objects(target, "KafkaTopic")
        if t["spec"]["config"]["cleanup.policy"] == "delete"
    }
    dead_letters = retention.pop("mail.deadletter.v1")
    assert all(0 < ms < dead_letters for ms in retention.values()), retention


def test_the_readme_explains_every_topic() -> None:
    readme = (K8S / "README.md").read_text(encoding="utf-8")
    missing = [topic for topic in CONTRACT_TOPICS if f"`{topic}`" not in readme]
    assert not missing, f"deploy/k8s/README.md does not explain {missing}"


@pytest.mark.parametrize("target", TARGETS)
def test_linker_and_outbound_scale_with_keda_on_their_own_consumer_lag(target: str) -> None:
    bootstrap = _config_map(target)["data"]["MAILSYNC_KAFKA_BOOTSTRAP"]
    partitions = _topic_partitions(target)
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in _objects(target, "ScaledObject")}
    assert set(scaled) == KEDA_SCALED
    problems = []
    for service, scaled_object in scaled.items():
        spec = scaled_object["spec"]
        if spec["scaleTargetRef"].get("kind", "Deployment") != "Deployment":
            problems.append(f"{service}: must scale its Deployment")
        kafka = [t["metadata"] for t in spec["triggers"] if t["type"] == "kafka"]
        watched = {m["topic"] for m in kafka}
        if watched != CONSUMED_TOPICS[service]:
            problems.append(f"{service}: lag triggers on {sorted(watched)}")
        for metadata in kafka:
            if metadata["consumerGroup"] != f"mailsync-{service}":
                problems.append(f"{service}: watches group {metadata['consumerGroup']}")
            if metadata["bootstrapServers"] != bootstrap:
                problems.append(f"{service}: KEDA reads {metadata['bootstrapServers']}")
            if not metadata.get("lagThreshold", "").isdigit():
                problems.append(f"{service}: lagThreshold must be a whole number")
        # Replicas beyond the partitions of the widest topic would sit idle.
        ceiling = max(partitions[topic] for topic in watched) if watched else 0
        if not 1 <= spec.get("minReplicaCount", 0) <= spec["maxReplicaCount"] <= ceiling:
            problems.append(f"{service}: replica range must be within 1..{ceiling}")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_tracking_scales_with_a_cpu_horizontal_pod_autoscaler(target: str) -> None:
    autoscalers = _objects(target, "HorizontalPodAutoscaler")
    assert [a["spec"]["scaleTargetRef"]["name"] for a in autoscalers] == sorted(HPA_SCALED)
    (hpa,) = autoscalers
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    resources = [m["resource"]["name"] for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
    assert "cpu" in resources


@pytest.mark.parametrize("target", TARGETS)
def test_autoscaled_deployments_leave_replicas_to_their_autoscaler(target: str) -> None:
    deployments = _deployments(target)
    problems = [
        f"{name}: sets spec.replicas, which every apply would reset under the autoscaler"
        for name in KEDA_SCALED | HPA_SCALED
        if "replicas" in deployments[name]["spec"]
    ]
    _fail_on(problems)


@pytest.mark.parametrize("target", OVERLAYS)
def test_ingest_replicas_are_sized_per_overlay_within_the_account_partitions(
    target: str,
) -> None:
    replicas = _deployments(target)["ingest"]["spec"].get("replicas")
    ceiling = _topic_partitions(target)["mail.account.commands.v1"]
    assert isinstance(replicas, int), "ingest has no autoscaler: each overlay sets replicas"
    assert 1 <= replicas <= ceiling, f"{replicas} replicas for {ceiling} partitions"


@pytest.mark.parametrize("target", TARGETS)
def test_only_linker_and_tracking_have_a_service_and_it_reaches_their_http_port(
    target: str,
) -> None:
    deployments = _deployments(target)
    services = {s["metadata"]["name"]: s for s in _objects(target, "Service")}
    assert set(services) == HTTP_SERVICES
    problems = []
    for name, service in services.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        if not _selects({"matchLabels": service["spec"]["selector"]}, labels):
            problems.append(f"Service {name} does not select the {name} pods")
        if service["spec"].get("type", "ClusterIP") != "ClusterIP":
            problems.append(f"Service {name} must stay internal (ClusterIP)")
        if [p["targetPort"] for p in service["spec"]["ports"]] != ["http"]:
            problems.append(f"Service {name} must target the named port http")
    _fail_on(problems)


@pytest.mark.parametrize("target", TARGETS)
def test_the_public_ingress_exposes_only_the_pixel_and_click_routes(target: str) -> None:
    routes = sorted(
        (path["path"], path["pathType"], path["backend"]["service"]["name"])
        for ingress in _objects(target, "Ingress")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    )
    assert routes == [("/c/", "Prefix", "tracking"), ("/o/", "Prefix", "tracking")]


@pytest.mark.parametrize("target", TARGETS)
def test_services_live_in_the_app_namespace_and_topics_next_to_the_kafka_cluster(
    target: str,
) -> None:
    problems = []
    for obj in _render(target):
        expected = KAFKA_NAMESPACE if obj["kind"] == "KafkaTopic" else APP_NAMESPACE
        metadata = obj["metadata"]
        actual = metadata["name"] if obj["kind"] == "Namespace" else metadata.get("namespace")
        if actual != expected:
            problems.append(f"{_ref(obj)} is in {actual}, expected {expected}")
    _fail_on(problems)
