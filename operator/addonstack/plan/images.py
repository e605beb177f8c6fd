"""Registry mirrors: where every image of a stack is pulled from when the provider runs one.

A provider behind a pull-through cache or an air-gapped registry sets ``imageRegistry: <host[:port][/prefix]>``
(the spec, the operator's ``--image-registry``, or the library input). Every image reference is then
rewritten the way pull-through caches lay out their repositories (Harbor proxy projects, registry:2 as a
mirror, Artifactory remote repositories):

* Docker Hub short names get their implicit namespace: ``redis:7`` -> ``<mirror>/library/redis:7``,
  ``user/img:tag`` -> ``<mirror>/user/img:tag`` (``docker.io/`` and ``index.docker.io/`` count as Docker Hub).
* Other registries keep their host as the first path element: ``ghcr.io/a/b:1`` -> ``<mirror>/ghcr.io/a/b:1``.
* Tags and digests are kept; a reference already under the mirror is left alone (the rewrite is
  idempotent), and so are images Compose builds locally (``addonstack-build/...``, never pulled).

The syntax rule of the field lives here, below ``plan.models`` (the library input) and ``plan.validate``
(the spec), so the library, ``addonstack validate`` and the operator's flag report it in the same words.
"""

from __future__ import annotations

import re

REGISTRY_EXAMPLE = "registry.example.com/mirror"
BUILT_IMAGE_PREFIX = "addonstack-build/"  # images Compose builds from a git ref (plan.build.built_image)
DOCKER_HUB = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io"})
# No backslashes ([.] for a dot): the pattern is also a CEL string in the CRD (render.crd).
_HOST = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?"
_PATH = r"[a-z0-9]+(([._]|__|-+)[a-z0-9]+)*"
REGISTRY_PATTERN = rf"^{_HOST}(/{_PATH})*$"
REGISTRY_FIX = f"give host[:port][/prefix] without scheme or trailing slash, e.g. {REGISTRY_EXAMPLE}"
_REGISTRY = re.compile(REGISTRY_PATTERN)


def registry_problem(value: str, field: str = "imageRegistry") -> str | None:
    """Why ``value`` is not a registry address (``<field>: <what>; <fix>``), or None when it is one."""
    fix = REGISTRY_FIX
    if "://" in value:
        return f"{field}: {value!r} has a scheme; drop {value.split('://', 1)[0]}:// and {fix}"
    if value != value.lower():
        return f"{field}: {value!r} has upper-case letters; registry hosts and paths are lower case: {fix}"
    if value.endswith("/"):
        return f"{field}: {value!r} ends with '/'; {fix}"
    if not _REGISTRY.fullmatch(value) or len(value) > 255:
        return f"{field}: {value!r} is not a registry address; {fix}"
    host = value.split("/", 1)[0]
    if "." not in host and ":" not in host and host != "localhost":
        # Without a dot or a port the first element is read as a Docker Hub namespace, not a host.
        return (
            f"{field}: {host!r} is not a registry host (a host has a dot or a port, or is localhost; "
            f"otherwise it names a Docker Hub account); {fix}"
        )
    return None


def split_reference(ref: str) -> tuple[str | None, str]:
    """``(registry host or None for Docker Hub, repository path with tag/digest)`` as Docker reads a reference."""
    first, sep, rest = ref.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return (None if first in DOCKER_HUB else first), rest
    return None, ref


def mirror_image(ref: str, registry: str | None) -> str:
    """``ref`` as pulled through ``registry`` (unchanged without one; see the module docstring)."""
    if not registry or ref.startswith(f"{registry}/") or ref.startswith(BUILT_IMAGE_PREFIX):
        return ref
    host, path = split_reference(ref)
    if host is None:
        name = path.split("@", 1)[0].split(":", 1)[0]
        return f"{registry}/{path}" if "/" in name else f"{registry}/library/{path}"
    return f"{registry}/{host}/{path}"


def unmirror_image(ref: str, registry: str | None) -> str:
    """The reference ``mirror_image`` started from (Docker Hub images in their short form)."""
    if not registry or not ref.startswith(f"{registry}/"):
        return ref
    rest = ref[len(registry) + 1 :]
    if rest.startswith("library/"):
        return rest[len("library/") :]
    return rest
