"""Readable messages for pydantic validation errors: the key, what went wrong, what is allowed."""

from typing import Any

from pydantic import BaseModel, ValidationError


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The nested pydantic model that owns the last key of `loc`, if it can be found."""
    current: Any = model
    for part in loc[:-1]:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = field.annotation
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def describe_errors(model: type[BaseModel], error: ValidationError) -> list[str]:
    """One line per problem, e.g. "unknown key 'train.lrr' (allowed: lr, epochs, ...)"."""
    lines = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(p) for p in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            owner = _model_at(model, loc)
            allowed = ", ".join(owner.model_fields) if owner else "see the documentation"
            lines.append(f"unknown key '{key}' (allowed: {allowed})")
        elif item["type"] == "missing":
            lines.append(f"missing required key '{key}'")
        else:
            lines.append(f"'{key}': {item['msg']} (got {item.get('input')!r})")
    return lines
