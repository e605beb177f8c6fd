"""Closed sets of words AddonStack reports: why a service was skipped, which phase a service is in.

One module at the bottom layer (next to ``constants``), so the plan, the API models, the CRD and the
operator all name them the same way, and the docs test walks them instead of reading source code.
They are ``StrEnum``s: a member *is* its string, so it compares equal to, formats as and serializes
to the word on the wire. Adding a reason is one line in its enum (then ``make generate`` and a
paragraph in docs/troubleshooting.md, which the docs test asks for).
"""

from __future__ import annotations

from enum import StrEnum


class SkipReason(StrEnum):
    UNKNOWN_SERVICE = "unknown_service"
    NO_IMAGE = "no_image"
    GPU_REQUIRED = "gpu_required"
    MISSING_CREDENTIALS = "missing_credentials"
    PLATFORM_UNSUPPORTED = "platform_unsupported"
    CONFLICT = "conflict"
    DEPENDENCY_SKIPPED = "dependency_skipped"
    EXPERIMENTAL = "experimental"
    DOCKER_SOCKET = "docker_socket"


class ServicePhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"
    WAITING_FOR_DATABASE = "WaitingForDatabase"
    PAUSED = "Paused"
