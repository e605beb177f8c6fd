"""``python -m addonstack.catalog.check [DIR] [--catalog-dir EXTRA]``: load, lint, print problems, exit 1 if any.

A separate module because the loader runs the lint on merged catalogs (the lint cannot import the loader).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from addonstack.catalog.lint import lint
from addonstack.catalog.loader import CatalogError, default_catalog_dir, load_catalog_from, merged_catalog


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m addonstack.catalog.check", description=__doc__)
    parser.add_argument("directory", nargs="?", type=Path, default=None, help="catalog (default: the built-in one)")
    parser.add_argument("--catalog-dir", type=Path, default=None, help="a provider's entries to merge over it")
    args = parser.parse_args(argv)
    try:
        cat = load_catalog_from(args.directory or default_catalog_dir())
        if args.catalog_dir is not None:
            cat = merged_catalog(cat, args.catalog_dir)
    except CatalogError as exc:
        print(exc)
        return 1
    problems = lint(cat)
    for p in problems:
        print(p)
    print(
        f"{len(cat.services)} services, {len(cat.categories)} categories, {len(cat.skills)} skills, "
        f"{len(cat.packs)} packs; {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
