"""A named registry shared by methods, tasks and models, so every lookup fails the same way."""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name that is not registered; the message names the valid choices."""

    def __init__(self, kind: str, name: str, choices: list[str]) -> None:
        close = difflib.get_close_matches(name, choices, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        self.message = f"unknown {kind} {name!r}{hint}; valid choices: {', '.join(choices)}"
        super().__init__(self.message)

    def __str__(self) -> str:
        return self.message


class Registry(Generic[T]):
    """Maps stable names to objects; duplicate names are a programming error.

    >>> methods = Registry[int]("method")
    >>> methods.add("eap", 1)
    >>> methods.get("eap")
    1
    """

    def __init__(
        self, kind: str, loader: Callable[[], None] | None = None, rank: Callable[[T], int] | None = None
    ) -> None:
        """`loader`, when given, fills the registry (built-ins, then plugins) on first use, so
        importing the registry costs nothing until someone looks a name up. `rank`, when given,
        orders the names (ties in registration order), so the order does not depend on which
        module happened to be imported first."""
        self.kind = kind
        self._items: dict[str, T] = {}
        self._loader = loader
        self._loading = False
        self._rank = rank

    def _load(self) -> None:
        if self._loader is None or self._loading:
            return
        loader, self._loading = self._loader, True
        try:
            loader()
            self._loader = None
        finally:
            self._loading = False

    def add(self, name: str, item: T) -> None:
        self._load()  # built-ins first, so a duplicate name is caught whoever registers second
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._items[name] = item

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""

        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(self.kind, name, self.names()) from None

    def names(self) -> list[str]:
        self._load()
        if self._rank is None:
            return list(self._items)
        rank = self._rank
        return sorted(self._items, key=lambda name: rank(self._items[name]))

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        self._load()
        return len(self._items)
