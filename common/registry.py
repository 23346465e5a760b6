"""A tiny name -> factory registry, so robots, tasks and algorithms are chosen by name, not by if/elif."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class UnknownNameError(KeyError):
    """Raised for a name nobody registered; the message lists the names that exist."""

    def __str__(self) -> str:  # KeyError would otherwise wrap the message in quotes
        return str(self.args[0])


class Registry(Generic[T]):
    """Maps names to factories. `register(name)` is a decorator; `get(name)` fails listing `names()`."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        def decorator(factory: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = factory
            return factory

        return decorator

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(self.names()) or "(none)"
            raise UnknownNameError(f"unknown {self.kind} {name!r}; known: {known}") from None

    def name_of(self, factory: T) -> str:
        """The name `factory` was registered under (a ValueError if it never was)."""
        for name, entry in self._entries.items():
            if entry is factory:
                return name
        raise ValueError(f"{factory!r} is not a registered {self.kind}")

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries
