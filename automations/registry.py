"""A registry of unit types keyed by a stable name (step types, trigger types).

Registration happens when a module is imported; ``actions/__init__.py`` and
``triggers/__init__.py`` import every module explicitly so the set is complete at start-up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from automations.errors import DuplicateType, UnknownType

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[type], type]:
        """Class decorator: instantiate the class once and file it under ``name``."""

        def decorate(cls: type) -> type:
            if name in self._items:
                raise DuplicateType(f"{self.kind} type {name!r} registered twice")
            setattr(cls, "name", name)  # noqa: B010 -- the registered classes declare ``name``; ``type`` does not
            self._items[name] = cls()
            return cls

        return decorate

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise UnknownType(self.kind, name) from None

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def names(self) -> list[str]:
        return sorted(self._items)

    def __iter__(self) -> Iterator[T]:
        return iter(self._items.values())
