"""The operator's requests carry dicts: each kind is lightkube's plain-dict resource with its typed model's paths."""

from __future__ import annotations

from lightkube.core.resource_registry import resource_registry
from lightkube.generic_resource import Generic, GenericGlobalResource, GenericNamespacedResource

from addonstack.constants import API_GROUP, API_VERSION, KIND
from addonstack.controller.cluster import AddonStackResource, _model


def test_a_built_in_kind_is_a_dict_resource_with_the_typed_models_api_paths() -> None:
    deployment = _model("apps/v1", "Deployment")
    typed = resource_registry.load("apps/v1", "Deployment")
    assert issubclass(deployment, GenericNamespacedResource) and deployment is not typed
    assert deployment._api_info == typed._api_info
    assert _model("apps/v1", "Deployment") is deployment  # built once per kind
    namespace = _model("v1", "Namespace")
    assert issubclass(namespace, GenericGlobalResource) and namespace._api_info.plural == "namespaces"


def test_an_object_goes_out_and_comes_back_as_the_same_dict_with_unknown_fields_kept() -> None:
    body = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "a", "namespace": "t"},
        "data": {"k": "v"},
        "fieldFromANewerServer": {"x": 1},  # a typed model drops what it does not know
    }
    obj = _model("v1", "ConfigMap")(body)
    assert isinstance(obj, Generic) and obj.to_dict() == body


def test_a_crd_kind_keeps_its_own_generic_resource() -> None:
    assert _model(f"{API_GROUP}/{API_VERSION}", KIND) is AddonStackResource
