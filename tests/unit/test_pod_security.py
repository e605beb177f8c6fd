"""The catalog's ``podSecurity`` reaches both render targets, and a namespace's enforce level skips what it refuses."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from addonstack.api import generate_addon_stack
from addonstack.catalog.lint import lint
from addonstack.catalog.loader import load_catalog
from addonstack.catalog.model import Catalog, PodSecurity, Service
from addonstack.cli.main import cli
from addonstack.plan.build import build_plan
from addonstack.plan.models import StackOptions
from addonstack.plan.resolve import enforced_level
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.reasons import SkipReason
from addonstack.render.compose import render_compose
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.composeview import compose_view
from tests.schemas import compose_errors


def _k8s(ids: list[str], pod_security: Any = None, cat: Catalog | None = None) -> tuple[list[dict[str, Any]], Any]:
    spec = AddonStackSpec.model_validate({"services": ids, "allowExperimental": True})
    cat = cat or load_catalog()
    planned = plan_stack(cat, spec, "s", "ns", StackDefaults(), make_rng(1), pod_security=pod_security)
    plan, ctx = planned.plan, planned.context
    return render_kubernetes(plan, ctx)[0], plan


def _pod(objs: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    wl = next(o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == sid)
    spec: dict[str, Any] = wl["spec"]["template"]["spec"]
    return spec


def test_restricted_entry_gets_user_group_fsgroup_and_drops_all_capabilities() -> None:
    svc: Service = load_catalog().services["grafana"]
    assert svc.pod_security is not None and svc.pod_security.level == "restricted"
    pod = _pod(_k8s(["grafana"])[0], "grafana")
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True and psc["runAsUser"] == svc.run_as_user
    assert psc["runAsGroup"] == svc.pod_security.run_as_group and psc["fsGroup"] == svc.pod_security.fs_group
    assert psc["fsGroupChangePolicy"] == "OnRootMismatch" and psc["seccompProfile"] == {"type": "RuntimeDefault"}
    csc = pod["containers"][0]["securityContext"]
    assert csc["capabilities"] == {"drop": ["ALL"]} and csc["allowPrivilegeEscalation"] is False


def test_read_only_root_filesystem_mounts_an_empty_dir_per_writable_path() -> None:
    svc = load_catalog().services["loki"]
    assert svc.pod_security is not None and svc.pod_security.writable_paths == ["/tmp"]
    pod = _pod(_k8s(["loki"])[0], "loki")
    container = pod["containers"][0]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    scratch = [v for v in pod["volumes"] if "emptyDir" in v]
    assert [m["mountPath"] for m in container["volumeMounts"] if m["name"] == scratch[0]["name"]] == ["/tmp"]


def test_baseline_entry_keeps_the_image_user() -> None:
    pod = _pod(_k8s(["nextcloud"])[0], "nextcloud")
    assert "runAsNonRoot" not in pod["securityContext"] and "runAsUser" not in pod["securityContext"]
    assert pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"] is False


def test_compose_runs_restricted_entries_as_their_user_read_only_with_tmpfs() -> None:
    cat = load_catalog()
    plan = build_plan(cat, "box", ["loki", "nextcloud"], StackOptions(), make_rng(1))
    services = render_compose(plan)["services"]
    loki, ps = cat.services["loki"], cat.services["loki"].pod_security
    assert ps is not None
    assert services["loki"]["user"] == f"{loki.run_as_user}:{ps.run_as_group}"
    assert services["loki"]["cap_drop"] == ["ALL"] and services["loki"]["read_only"] is True
    assert services["loki"]["tmpfs"] == ["/tmp"]
    assert "user" not in services["nextcloud"] and "read_only" not in services["nextcloud"]
    assert all(s["security_opt"] == ["no-new-privileges:true"] for s in services.values())


def test_compose_hands_non_root_entries_their_volumes_first_as_fsgroup_does() -> None:
    """Compose has no fsGroup: a new named volume copies the owner of the image's directory, root for images
    without USER (meilisearch's /meili_data), so a one-shot step chowns it to the entry's user and fsGroup."""
    cat = load_catalog()
    plan = build_plan(cat, "box", ["meilisearch", "nextcloud"], StackOptions(image_registry="mirror.example"),
                      make_rng(1))  # fmt: skip
    services = render_compose(plan)["services"]
    svc, ps = cat.services["meilisearch"], cat.services["meilisearch"].pod_security
    assert ps is not None and ps.fs_group is not None
    step, owner = services["meilisearch-volumes"], f"{svc.run_as_user}:{ps.fs_group}"
    assert step["volumes"] == services["meilisearch"]["volumes"] and step["image"].startswith("mirror.example/")
    assert step["user"] == "0:0" and step["cap_drop"] == ["ALL"] and step["cap_add"] == ["CHOWN", "DAC_READ_SEARCH"]
    assert step["entrypoint"][3:] == ["sh", "/meili_data"] and f"chown -R {owner} " in step["entrypoint"][2]
    first = {"condition": "service_completed_successfully"}
    assert services["meilisearch"]["depends_on"]["meilisearch-volumes"] == first
    assert "nextcloud-volumes" not in services  # runs as the image's user: nothing to hand over


def test_namespace_enforcing_restricted_skips_baseline_entries_with_the_label_and_reason() -> None:
    level = enforced_level({"pod-security.kubernetes.io/enforce": "restricted"})
    objs, plan = _k8s(["nextcloud", "grafana"], level)
    assert plan.ids == ["grafana"]
    skip = next(s for s in plan.skipped if s.service_id == "nextcloud")
    reason = load_catalog().services["nextcloud"].pod_security.reason  # type: ignore[union-attr]
    assert skip.reason == SkipReason.POD_SECURITY
    assert "pod-security.kubernetes.io/enforce=restricted" in skip.details and reason.rstrip(".") in skip.details
    assert not any(o["metadata"]["name"] == "nextcloud" for o in objs)
    assert _k8s(["nextcloud"], enforced_level({"pod-security.kubernetes.io/enforce": "baseline"}))[1].ids == [
        "nextcloud"
    ]
    assert enforced_level({"pod-security.kubernetes.io/enforce": "bogus"}) is None


def test_validate_reports_the_pod_security_skip_offline(tmp_path: Any) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: addonstack.dev/v1alpha1\nkind: AddonStack\nmetadata: {name: s}\n"
                    "spec: {services: [nextcloud, grafana]}\n")  # fmt: skip
    res = CliRunner().invoke(cli, ["validate", "-f", str(path), "--pod-security", "restricted", "--json"])
    assert res.exit_code == 0, res.output
    assert '"reason": "pod_security"' in res.output and '"services": [\n    "grafana"\n  ]' in res.output


def _with_pod_security(sid: str, ps: dict[str, Any], run_as_user: int | None) -> Catalog:
    """The catalog with one entry's ``podSecurity`` (and user) replaced, as a port-80 nginx entry declares it."""
    cat = load_catalog()
    svc = cat.services[sid].model_copy(
        update={"pod_security": PodSecurity.model_validate(ps), "run_as_user": run_as_user}
    )
    return Catalog(services={**cat.services, sid: svc}, categories=cat.categories, skills=cat.skills, packs=cat.packs)


NGINX_NON_ROOT = {
    "level": "restricted",
    "runAsGroup": 101,
    "writablePaths": ["/var/cache/nginx", "/run"],
    "unprivilegedPortStart": 80,
}


def test_port_80_server_gets_the_sysctl_and_scratch_dirs_without_a_read_only_root() -> None:
    cat = _with_pod_security("excalidraw", NGINX_NON_ROOT, 101)
    pod = _pod(_k8s(["excalidraw"], cat=cat)[0], "excalidraw")
    psc = pod["securityContext"]
    assert psc["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "80"}]
    assert psc["runAsUser"] == 101 and psc["runAsGroup"] == 101 and psc["runAsNonRoot"] is True
    container = pod["containers"][0]
    assert "readOnlyRootFilesystem" not in container["securityContext"]
    scratch = {v["name"] for v in pod["volumes"] if v.get("emptyDir") == {}}
    mounted = [m["mountPath"] for m in container["volumeMounts"] if m["name"] in scratch]
    assert mounted == ["/var/cache/nginx", "/run"]


def test_compose_sets_the_sysctl_and_tmpfs_without_read_only() -> None:
    cat = _with_pod_security("excalidraw", NGINX_NON_ROOT, 101)
    doc = render_compose(build_plan(cat, "box", ["excalidraw"], StackOptions(), make_rng(1)))
    svc = doc["services"]["excalidraw"]
    assert svc["sysctls"] == {"net.ipv4.ip_unprivileged_port_start": "80"}
    assert svc["tmpfs"] == ["/var/cache/nginx", "/run"] and "read_only" not in svc
    assert svc["user"] == "101:101" and svc["cap_drop"] == ["ALL"]
    assert compose_errors(doc) == []


def test_lint_wants_the_sysctl_for_a_non_root_user_on_port_80_and_at_most_that_port() -> None:
    without = {k: v for k, v in NGINX_NON_ROOT.items() if k != "unprivilegedPortStart"}
    problems = lint(_with_pod_security("excalidraw", without, 101))
    assert any("excalidraw" in p and "cannot bind port 80; set it to 80" in p for p in problems), problems
    problems = lint(_with_pod_security("excalidraw", {**NGINX_NON_ROOT, "unprivilegedPortStart": 443}, 101))
    assert any("unprivilegedPortStart: 443 is above its port 80" in p for p in problems), problems
    problems = lint(_with_pod_security("grafana", {**NGINX_NON_ROOT, "runAsGroup": 472}, 472))
    assert any("grafana" in p and "no port below 1024; leave the field out" in p for p in problems), problems
    assert not [p for p in lint(_with_pod_security("excalidraw", NGINX_NON_ROOT, 101)) if "excalidraw" in p]


def test_port_80_nginx_entries_run_as_nginx_and_compose_loads_their_sysctl(composecheck: Path) -> None:
    """The stock-nginx entries moved to restricted: UID 101 on port 80, and Docker Compose's own loader
    accepts the rendered ``sysctls``."""
    cat = load_catalog()
    ids = ["excalidraw", "it-tools"]
    for sid in ids:
        ps = cat.services[sid].pod_security
        assert ps is not None and ps.level == "restricted" and ps.unprivileged_port_start == 80, sid
        assert cat.services[sid].run_as_user == 101 and "/var/cache/nginx" in ps.writable_paths, sid
    result = generate_addon_stack({"instanceId": "box", "services": ids}, seed=1)
    with tempfile.TemporaryDirectory() as workdir:
        view = compose_view(composecheck, result, Path(workdir), {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})
    assert set(ids) <= set(view["services"])
    assert "net.ipv4.ip_unprivileged_port_start: '80'" in result.compose_override


def test_adguard_home_binds_dns_as_nobody_with_the_sysctl_at_53() -> None:
    pod = _pod(_k8s(["adguard-home"])[0], "adguard-home")
    psc, csc = pod["securityContext"], pod["containers"][0]["securityContext"]
    assert psc["runAsUser"] == 65534 and psc["runAsNonRoot"] is True
    assert psc["sysctls"] == [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}]
    # the binary carries cap_net_bind_service as a file capability: exec needs it in the bounding set
    assert csc["capabilities"] == {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]}
