"""Model registry: `<name>/<version>/` with a manifest, on a directory or any S3 API."""

from ytlabel.registry.registry import Registry, parse_ref
from ytlabel.registry.store import RegistryError

__all__ = ["Registry", "RegistryError", "parse_ref"]
