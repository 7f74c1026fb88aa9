"""Typed reads of a jsonschema `ValidationError`, for the layers that explain one.

jsonschema's stub types these attributes as possibly unset (an error built by hand may lack
them); every error that `iter_errors` yields has them all.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # annotations only: importing jsonschema costs ~60 ms at start-up
    from jsonschema.exceptions import ValidationError

__all__ = ["failed_value", "failed_instance", "failed_schema"]


def failed_value(error: ValidationError) -> Any:
    """The failed keyword's value in the schema."""
    return cast(Any, error.validator_value)


def failed_instance(error: ValidationError) -> Any:
    """The value that failed."""
    return cast(Any, error.instance)


def failed_schema(error: ValidationError) -> Mapping[str, Any]:
    """The schema object holding the failed keyword; empty for a boolean schema."""
    return error.schema if isinstance(error.schema, Mapping) else {}
