"""``addonstack``: the command line, built on click, with rich tables for people and --json for programs.

Exit codes: 0 success, 2 bad input (a usage error, a file or field that is wrong, an unknown id), 1 a
failure (a cluster error, a stack not ready in time). Every command takes ``--json``; with it, errors are
``{"error": {"field": ..., "message": ...}}`` on stdout too. Commands that need a cluster import the
operator extras lazily, so the library and the offline commands work without them.

Commands live in ``catalog_commands``, ``stack_commands`` and ``cluster_commands`` and are registered
below, in one place; what they share is in ``output``, so no command module imports this one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from addonstack.catalog.loader import CATALOG_DIR_ENV, CatalogError, use_catalog_dir
from addonstack.cli import catalog_commands, cluster_commands, stack_commands
from addonstack.cli.output import BAD_INPUT, FAILURE, add_json_everywhere
from addonstack.constants import VERSION


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(VERSION, prog_name="addonstack")
@click.option(
    "--catalog-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help=f"A provider's catalog entries (services/, skills/, packs/, categories.yaml) merged over the built-in "
    f"catalog, replacing entries of the same id (default: ${CATALOG_DIR_ENV}).",
)
def cli(catalog_dir: Path | None) -> None:
    """AddonStack: sell self-hosted services; deploy them on Kubernetes or Docker Compose.

    \b
    Examples:
      addonstack catalog list --category automation
      addonstack generate --input stack.json --out ./out --seed 1
      addonstack render --target k8s -f examples/automation.yaml
      addonstack dev-cluster up
      addonstack --catalog-dir ./my-catalog catalog list
    """
    if catalog_dir is not None:
        use_catalog_dir(catalog_dir)


# Every command, registered here and nowhere else (the command modules only define them).
for _command in (
    catalog_commands.catalog,
    catalog_commands.packs,
    stack_commands.generate,
    stack_commands.update,
    stack_commands.render,
    stack_commands.validate,
    cluster_commands.status,
    cluster_commands.dev_cluster,
    cluster_commands.operator_group,
):
    cli.add_command(_command)
add_json_everywhere(cli)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(FAILURE)
    except CatalogError as exc:  # a provider's catalog (--catalog-dir) with a bad entry: file, field, problem
        if "--json" in sys.argv[1:]:
            click.echo(json.dumps({"error": {"field": "catalog-dir", "message": str(exc)}}))
        else:
            click.echo(f"error: {exc}", err=True)
        sys.exit(BAD_INPUT)
    except click.ClickException as exc:  # usage errors: exit 2, as JSON when --json was given
        if "--json" in sys.argv[1:]:
            field = exc.param.name if isinstance(exc, click.BadParameter) and exc.param else None
            click.echo(json.dumps({"error": {"field": field, "message": exc.format_message()}}))
            sys.exit(exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
