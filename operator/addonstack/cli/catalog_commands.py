"""Offline commands over the catalog: ``catalog`` (list, categories, show, search) and ``packs``."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from addonstack.cli.output import (
    BAD_INPUT,
    emit_json,
    fail,
    out,
)

# ---- catalog ------------------------------------------------------------------------------------


@click.group()
def catalog() -> None:
    """Browse the service catalog.

    \b
    Example:
      addonstack catalog show n8n
    """


def _service_row(s: Any) -> list[str]:
    ports = ",".join(f"{p.container}/{p.protocol}" for p in s.ports) or "-"
    needs = (
        ",".join(
            n
            for n, on in (
                ("gpu", s.gpu == "required"),
                ("postgres", s.postgres is not None),
                ("build", s.needs_build),
            )
            if on
        )
        or "-"
    )
    return [s.id, s.category, s.image_ref or "(build)", ports, f"{s.memory_mb}", s.maturity, needs]


def _services_table(services: list[Any], title: str) -> Table:
    table = Table(title=title, header_style="bold cyan")
    for col in ("id", "category", "image", "ports", "MiB", "maturity", "needs"):
        table.add_column(col, overflow="fold")
    for s in services:
        table.add_row(*_service_row(s))
    return table


@catalog.command("list")
@click.option("--category", "-c", help="Only this category id.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_list(category: str | None, as_json: bool) -> None:
    """List deployable services.

    \b
    Example:
      addonstack catalog list --category vector-db --json
    """
    from addonstack import get_all_services, get_services_by_category
    from addonstack.catalog.loader import load_catalog

    if category and category not in load_catalog().categories:
        from addonstack.plan.resolve import did_you_mean

        hint = did_you_mean(category, load_catalog().categories)
        fail(
            f"--category: unknown category {category!r}{hint}; see `addonstack catalog categories`",
            BAD_INPUT,
            "category",
        )
    services = get_services_by_category(category) if category else get_all_services()
    if as_json:
        emit_json([s.model_dump(by_alias=True, exclude_none=True, mode="json") for s in services])
        return
    out.print(_services_table(services, f"{len(services)} services"))


@catalog.command("categories")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_categories(as_json: bool) -> None:
    """List service categories.

    \b
    Example:
      addonstack catalog categories
    """
    from addonstack import SERVICE_CATEGORIES, get_services_by_category

    cats = list(SERVICE_CATEGORIES)
    if as_json:
        emit_json([c.model_dump(by_alias=True, mode="json") for c in cats])
        return
    table = Table(header_style="bold cyan")
    for col in ("id", "name", "services"):
        table.add_column(col)
    for c in cats:
        table.add_row(c.id, f"{c.icon} {c.name}", str(len(get_services_by_category(c.id))))
    out.print(table)


@catalog.command("show")
@click.argument("service_id")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_show(service_id: str, as_json: bool) -> None:
    """Show one service in full.

    \b
    Example:
      addonstack catalog show qdrant --json
    """
    from addonstack import get_service_by_id

    svc = get_service_by_id(service_id)
    if svc is None:
        from addonstack.catalog.loader import load_catalog
        from addonstack.plan.resolve import did_you_mean

        hint = did_you_mean(service_id, load_catalog().services)
        fail(f"no service {service_id!r}{hint}; try `addonstack catalog search {service_id}`", BAD_INPUT, "service_id")
    if as_json:
        emit_json(svc.model_dump(by_alias=True, exclude_none=True, mode="json"))
        return
    out.print(f"[bold]{svc.icon} {svc.name}[/] ({svc.id}) - {svc.category}, {svc.maturity}")
    out.print(svc.description)
    out.print(
        f"image: {svc.image_ref or '(needs a build: pass prebuiltImages)'}   memory: {svc.memory_mb} MiB"
        f"   gpu: {svc.gpu}   platforms: {', '.join(svc.platforms)}"
    )
    for p in svc.ports:
        out.print(f"  port {p.container}/{p.protocol}{'' if p.exposed else ' (internal)'}  {p.description}")
    table = Table("variable", "kind", "default", "description", header_style="bold cyan")
    for e in svc.env:
        kind = (
            "credential" + (" (required)" if e.required else "")
            if e.credential
            else ("generated" if e.generate else "secret" if e.secret else "")
        )
        table.add_row(e.key, kind, "" if e.secret else (e.default or ""), e.description)
    out.print(table)
    if svc.requires:
        out.print(f"requires: {', '.join(svc.requires)}")
    out.print(f"docs: {svc.docs_url}")


@catalog.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_search(words: tuple[str, ...], as_json: bool) -> None:
    """Find services by words in their id, name, description or tags.

    \b
    Example:
      addonstack catalog search vector database
    """
    from addonstack import get_all_services

    terms = [w.lower() for w in words]
    hits = [
        s
        for s in get_all_services()
        if all(t in " ".join([s.id, s.name, s.description, s.category, *s.tags]).lower() for t in terms)
    ]
    if as_json:
        emit_json([s.model_dump(by_alias=True, exclude_none=True, mode="json") for s in hits])
        return
    out.print(_services_table(hits, f"{len(hits)} matches"))


# ---- packs ----------------------------------------------------------------------------------------


@click.group()
def packs() -> None:
    """Browse skill packs (task bundles of services and agent skills).

    \b
    Example:
      addonstack packs show automation-hub --json
    """


@packs.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def packs_list(as_json: bool) -> None:
    """List skill packs.

    \b
    Example:
      addonstack packs list --json
    """
    from addonstack import get_all_skill_packs

    items = get_all_skill_packs()
    if as_json:
        emit_json([p.model_dump(by_alias=True, mode="json") for p in items])
        return
    table = Table("id", "name", "services", "skills", title=f"{len(items)} packs", header_style="bold cyan")
    for p in items:
        table.add_row(p.id, f"{p.icon} {p.name}", ", ".join(p.required_services), str(len(p.skills)))
    out.print(table)


@packs.command("show")
@click.argument("pack_id")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def packs_show(pack_id: str, as_json: bool) -> None:
    """Show one skill pack.

    \b
    Example:
      addonstack packs show automation-hub
    """
    from addonstack.catalog.loader import load_catalog

    cat = load_catalog()
    pack = cat.packs.get(pack_id)
    if pack is None:
        from addonstack.plan.resolve import did_you_mean

        hint = did_you_mean(pack_id, cat.packs)
        fail(f"no skill pack {pack_id!r}{hint}; see `addonstack packs list`", BAD_INPUT, "pack_id")
    if as_json:
        emit_json(pack.model_dump(by_alias=True, mode="json"))
        return
    out.print(f"[bold]{pack.icon} {pack.name}[/] ({pack.id})\n{pack.description}")
    out.print(f"required: {', '.join(pack.required_services)}")
    if pack.optional_services:
        out.print(f"optional: {', '.join(pack.optional_services)}")
    for sid in pack.skills:
        skill = cat.skills[sid]
        out.print(f"  skill {sid}: {skill.description} ({len(skill.tools)} tools)")
