"""AddonStack: turn a tenant's choice of self-hosted services into running, wired-up workloads.

The public library surface mirrors ``@better-openclaw/core``: generate/update an addon stack and
query the catalog. Everything here is pure; the operator lives in :mod:`addonstack.controller`.
"""

from addonstack.api import (
    SERVICE_CATEGORIES,
    AddonStackError,
    generate_addon_stack,
    get_all_services,
    get_all_skill_packs,
    get_compatible_skill_packs,
    get_service_by_id,
    get_services_by_category,
    update_addon_stack,
)
from addonstack.constants import VERSION
from addonstack.plan.models import (
    AddonStackInput,
    AddonStackResult,
    AddonStackUpdateInput,
    AddonStackUpdateResult,
    EnvVarView,
    PrePullImage,
    ProxyRoute,
    ServiceEnv,
    SkippedService,
    StackMetadata,
    StackOptions,
    StreamRoute,
    UpdateMetadata,
)

__version__ = VERSION
__all__ = [
    "SERVICE_CATEGORIES",
    "AddonStackError",
    "AddonStackInput",
    "AddonStackResult",
    "AddonStackUpdateInput",
    "AddonStackUpdateResult",
    "EnvVarView",
    "PrePullImage",
    "ProxyRoute",
    "ServiceEnv",
    "SkippedService",
    "StackMetadata",
    "StackOptions",
    "StreamRoute",
    "UpdateMetadata",
    "generate_addon_stack",
    "get_all_services",
    "get_all_skill_packs",
    "get_compatible_skill_packs",
    "get_service_by_id",
    "get_services_by_category",
    "update_addon_stack",
]
