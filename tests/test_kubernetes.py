"""deploy/kubernetes: valid for Kubernetes 1.33, in agreement with the app, and run.

There is no cluster here, so each manifest is validated strictly against Kubernetes'
own 1.33 schemas (kubernetes-validate ships them: no network), its values are checked
against the image and the settings, and the Deployment's pod is run by Docker as the
kubelet would run it: the same user, read-only root, capabilities and privilege rule,
its emptyDir as a tmpfs and its CPU limit as --cpus.
"""

from __future__ import annotations

import copy
import math
import re
import shutil
import socket
import subprocess

import kubernetes_validate
import pytest
import yaml

from app import create_app
from settings import BY_ENV
from tests.container_support import built_image, running_container
from tests.support import ROOT, SECRET, get

MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33"


def kustomization() -> dict:
    return yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())


def load_objects() -> list[dict]:
    """Every object the kustomization's resources hold, in order."""
    objects = []
    for name in kustomization()["resources"]:
        objects += [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text()) if doc]
    return objects


OBJECTS = load_objects()


def the(kind: str) -> dict:
    (found,) = [o for o in OBJECTS if o["kind"] == kind]
    return found


DEPLOYMENT = the("Deployment")
POD = DEPLOYMENT["spec"]["template"]["spec"]
(CONTAINER,) = POD["containers"]
ENV = {e["name"]: e for e in CONTAINER.get("env", [])}


def container_port(port: int | str) -> int:
    """A probe's or a Service's target port, named or numbered, as the container's number."""
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in CONTAINER["ports"] if p.get("name") == port]
    return number


def effective_security_context() -> dict:
    """The container's securityContext over the pod's, as the kubelet merges them."""
    pod_level = {
        k: v
        for k, v in POD.get("securityContext", {}).items()
        if k in ("runAsUser", "runAsGroup", "runAsNonRoot", "seccompProfile")
    }
    return {**pod_level, **CONTAINER.get("securityContext", {})}


def cpus(quantity: str | int | float) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def memory_bytes(quantity: str | int) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 10**3, "M": 10**6, "G": 10**9}
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", str(quantity))
    assert match, quantity
    return int(match[1]) * units.get(match[2], 1)


def labels_match(selector: dict, labels: dict) -> bool:
    wanted = selector.get("matchLabels", selector)
    return bool(wanted) and all(labels.get(k) == v for k, v in wanted.items())


# --- the files ---------------------------------------------------------------------------------


def test_kustomization_names_every_manifest():
    listed = kustomization()["resources"]
    present = sorted(p.name for p in MANIFESTS.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(listed) == present
    kinds = sorted(o["kind"] for o in OBJECTS)
    assert kinds == sorted(
        ["Deployment", "Service", "PodDisruptionBudget", "HorizontalPodAutoscaler", "Ingress"]
    )
    # The image is set in one place, for the name the Deployment uses.
    (image,) = kustomization()["images"]
    assert image["name"] == CONTAINER["image"]


@pytest.mark.parametrize("obj", OBJECTS, ids=lambda o: o["kind"])
def test_validates_strictly_against_the_kubernetes_schemas(obj, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("kubernetes-validate tried the network")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    # strict: a field the schema does not know (a typo, a wrong indent) is an error.
    assert kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True) == KUBERNETES_VERSION


def test_strict_validation_catches_a_misspelled_field_and_a_wrong_type():
    def container(deployment: dict) -> dict:
        return deployment["spec"]["template"]["spec"]["containers"][0]

    misspelled = copy.deepcopy(DEPLOYMENT)
    container(misspelled)["readinesProbe"] = container(misspelled).pop("readinessProbe")
    # Without strict, an unknown field passes (and the cluster would drop it silently).
    assert kubernetes_validate.validate(misspelled, KUBERNETES_VERSION, strict=False)
    with pytest.raises(kubernetes_validate.ValidationError, match="readinesProbe"):
        kubernetes_validate.validate(misspelled, KUBERNETES_VERSION, strict=True)
    wrong_type = copy.deepcopy(DEPLOYMENT)
    container(wrong_type)["readinessProbe"]["periodSeconds"] = "5"
    with pytest.raises(kubernetes_validate.ValidationError, match="integer"):
        kubernetes_validate.validate(wrong_type, KUBERNETES_VERSION, strict=True)


def test_no_secret_is_shipped():
    assert "Secret" not in {o["kind"] for o in OBJECTS}
    secret_key = ENV["SECRET_KEY"]
    assert "value" not in secret_key and secret_key["valueFrom"]["secretKeyRef"]["key"]
    text = "\n".join(p.read_text() for p in MANIFESTS.iterdir())
    assert "SECRET_KEY:" not in text  # no stringData/data entry holding a key


def test_kubectl_kustomize_renders_the_same_objects():
    kubectl = shutil.which("kubectl")
    if not kubectl:
        pytest.skip("kubectl is not installed (it renders the kustomization without a cluster)")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(MANIFESTS)], capture_output=True, text=True, timeout=60
    )
    assert rendered.returncode == 0, rendered.stderr
    objects = [o for o in yaml.safe_load_all(rendered.stdout) if o]

    def names(found: list[dict]) -> list[tuple[str, str]]:
        return sorted((o["kind"], o["metadata"]["name"]) for o in found)

    assert names(objects) == names(OBJECTS)
    (deployment,) = [o for o in objects if o["kind"] == "Deployment"]
    (image,) = kustomization()["images"]
    rendered_image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert rendered_image == f"{image['newName']}:{image['newTag']}"


# --- agreement with the app ------------------------------------------------------------------


def test_one_port_from_the_image_to_the_ingress():
    (port,) = CONTAINER["ports"]
    dockerfile = (ROOT / "Dockerfile").read_text()
    exposed = re.findall(r"^EXPOSE\s+(\d+)", dockerfile, re.M)
    assert [port["containerPort"]] == [int(p) for p in exposed] == [BY_ENV["PORT"].default]
    assert "PORT" not in ENV  # the default, as everywhere else
    service = the("Service")
    assert labels_match(
        service["spec"]["selector"], DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    )
    (service_port,) = service["spec"]["ports"]
    assert container_port(service_port["targetPort"]) == port["containerPort"]
    backend = the("Ingress")["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend["name"] == service["metadata"]["name"]
    assert (
        backend["port"].get("name") == service_port["name"]
        or backend["port"].get("number") == service_port["port"]
    )


def test_scrape_annotations_name_the_apps_port_and_follow_metrics():
    annotations = DEPLOYMENT["spec"]["template"]["metadata"]["annotations"]
    assert int(annotations["prometheus.io/port"]) == CONTAINER["ports"][0]["containerPort"]
    assert annotations["prometheus.io/path"] == "/metrics"
    metrics = BY_ENV["METRICS"].convert(ENV["METRICS"]["value"]) if "METRICS" in ENV else False
    assert annotations["prometheus.io/scrape"] == str(metrics).lower()  # off by default


def test_probes_ask_the_endpoints_made_for_them():
    probes = {name: CONTAINER[name] for name in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert probes["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert probes["livenessProbe"]["httpGet"]["path"] == "/healthz"
    client = create_app({"APP_ENV": "testing"}).test_client()
    for name, probe in probes.items():
        assert container_port(probe["httpGet"]["port"]) == CONTAINER["ports"][0]["containerPort"]
        assert client.get(probe["httpGet"]["path"]).status_code == 200, name
    # Liveness allows far longer than a drain: a pod that is draining is never taken for dead.
    liveness = probes["livenessProbe"]
    assert (
        liveness["periodSeconds"] * liveness["failureThreshold"]
        > BY_ENV["GRACEFUL_TIMEOUT"].default
    )


def test_a_rollout_keeps_capacity_and_every_request():
    spec = DEPLOYMENT["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    rolling = spec["strategy"]["rollingUpdate"]
    assert rolling["maxUnavailable"] == 0 and rolling["maxSurge"] not in (0, "0%")
    pause = CONTAINER["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pause > 0
    drain = (
        float(ENV["GRACEFUL_TIMEOUT"]["value"])
        if "GRACEFUL_TIMEOUT" in ENV
        else BY_ENV["GRACEFUL_TIMEOUT"].default
    )
    # The kubelet's SIGKILL comes this long after the pod is deleted, preStop included.
    assert POD["terminationGracePeriodSeconds"] > pause + drain


def test_the_pod_meets_the_restricted_profile():
    context = effective_security_context()
    assert context["runAsNonRoot"] is True
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    assert context["capabilities"]["drop"] == ["ALL"] and not context["capabilities"].get("add")
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    assert not context.get("privileged")
    assert not any(POD.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    # runAsNonRoot needs a numeric user: the image's own.
    image_user = re.findall(r"^USER\s+(\S+)", (ROOT / "Dockerfile").read_text(), re.M)[-1]
    assert f"{context['runAsUser']}:{context['runAsGroup']}" == image_user
    # The one writable place is an emptyDir on /tmp.
    volumes = {v["name"]: v for v in POD["volumes"]}
    (mount,) = CONTAINER["volumeMounts"]
    assert mount["mountPath"] == "/tmp" and "emptyDir" in volumes[mount["name"]]
    assert set(volumes) == {mount["name"]}


def test_resources_leave_the_worker_count_to_the_cgroup():
    resources = CONTAINER["resources"]
    for kind in ("requests", "limits"):
        assert {"cpu", "memory"} <= set(resources[kind]), kind
    assert cpus(resources["limits"]["cpu"]) >= 1  # at least one whole worker
    assert "WEB_CONCURRENCY" not in ENV
    assert ENV["APP_ENV"]["value"] == "production"
    assert int(ENV["TRUSTED_PROXY_HOPS"]["value"]) >= 1  # the ingress controller


def test_the_budget_the_autoscaler_and_the_spread_select_these_pods():
    labels = DEPLOYMENT["spec"]["template"]["metadata"]["labels"]
    assert labels_match(DEPLOYMENT["spec"]["selector"], labels)
    budget = the("PodDisruptionBudget")["spec"]
    assert labels_match(budget["selector"], labels)
    # A node drain must be able to proceed: at least one pod may go at a time.
    assert (
        budget.get("maxUnavailable", 0) >= 1
        or budget["minAvailable"] < DEPLOYMENT["spec"]["replicas"]
    )
    autoscaler = the("HorizontalPodAutoscaler")["spec"]
    target = autoscaler["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", DEPLOYMENT["metadata"]["name"])
    assert autoscaler["minReplicas"] == DEPLOYMENT["spec"]["replicas"]
    assert autoscaler["maxReplicas"] > autoscaler["minReplicas"]
    (metric,) = autoscaler["metrics"]
    # Utilization is a percentage of the CPU request, which the pod must then have.
    assert (
        metric["resource"]["name"] == "cpu"
        and metric["resource"]["target"]["type"] == "Utilization"
    )
    assert cpus(CONTAINER["resources"]["requests"]["cpu"]) > 0
    for spread in POD.get("topologySpreadConstraints", []):
        assert labels_match(spread["labelSelector"], labels)


# --- the pod, run by Docker as the kubelet would ---------------------------------------------


def docker_options_for_the_pod() -> list[str]:
    """docker run options for what the Deployment asks of its container's runtime."""
    context = effective_security_context()
    options = ["--user", f"{context['runAsUser']}:{context['runAsGroup']}"]
    if context.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    if context.get("allowPrivilegeEscalation") is False:
        options += ["--security-opt", "no-new-privileges"]
    for capability in context["capabilities"].get("drop", []):
        options += ["--cap-drop", capability]
    for capability in context["capabilities"].get("add", []):
        options += ["--cap-add", capability]
    # RuntimeDefault is the runtime's default seccomp profile: Docker's, with no option.
    assert context["seccompProfile"]["type"] == "RuntimeDefault"
    volumes = {v["name"]: v for v in POD["volumes"]}
    for mount in CONTAINER["volumeMounts"]:
        empty_dir = volumes[mount["name"]]["emptyDir"]
        size = empty_dir.get("sizeLimit")
        options += ["--tmpfs", mount["mountPath"] + (f":size={memory_bytes(size)}" if size else "")]
    limits = CONTAINER["resources"]["limits"]
    options += ["--cpus", str(cpus(limits["cpu"])), "--memory", str(memory_bytes(limits["memory"]))]
    return options


def pod_environment() -> dict[str, str]:
    env = {}
    for name, entry in ENV.items():
        if "value" in entry:
            env[name] = entry["value"]
        elif "secretKeyRef" in entry.get("valueFrom", {}):
            env[name] = SECRET  # what `kubectl create secret` would hold
        else:
            raise AssertionError(f"{name}: a source this test cannot translate")
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)  # the image may have to be built first
def test_the_deployments_pod_serves_in_docker():
    image = built_image()
    with running_container(image.tag, docker_options_for_the_pod(), pod_environment()) as pod:
        workers = math.ceil(cpus(CONTAINER["resources"]["limits"]["cpu"]))
        assert len(pod.wait_workers_booted(workers)) == workers, pod.logs()
        for name in ("startupProbe", "readinessProbe", "livenessProbe"):
            path = CONTAINER[name]["httpGet"]["path"]
            assert get(pod.port, path).status == 200, (name, path)
        info = get(pod.port, "/api/info").json()
        assert info["env"] == "production" and info["launcher"] == "gunicorn"
        # The kubelet's SIGTERM comes after the preStop pause; its SIGKILL at the end of
        # the grace period. In between gunicorn must be done.
        pause = CONTAINER["lifecycle"]["preStop"]["sleep"]["seconds"]
        remaining = POD["terminationGracePeriodSeconds"] - pause
        stop = subprocess.run(
            ["docker", "stop", "--time", str(remaining), pod.id], capture_output=True, timeout=60
        )
        assert stop.returncode == 0
        assert pod.state["ExitCode"] == 0, pod.logs()


def test_manifest_directory_holds_only_yaml():
    assert {p.suffix for p in MANIFESTS.iterdir()} == {".yaml"}, list(MANIFESTS.iterdir())
