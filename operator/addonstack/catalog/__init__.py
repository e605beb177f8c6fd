"""The service catalog: typed model, loader and lint."""

from addonstack.catalog.loader import Catalog, CatalogError, load_catalog

__all__ = ["Catalog", "CatalogError", "load_catalog"]
