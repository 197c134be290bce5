"""Watch: the stream of changes clients follow (``?watch=1``).

The :class:`WatchHub` listens to the store, keeps a window of recent events so a client
can resume from a resourceVersion, and fans events out to the open watches.

Example:
    >>> hub = WatchHub(store)                        # doctest: +SKIP
    >>> w = hub.open("", "pods", "default")          # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable
from dataclasses import dataclass, field

from ..store import Store

__all__ = ["Event", "TooOld", "Watch", "WatchHub"]


@dataclass
class Event:
    """One committed change, as a watch sends it."""

    type: str
    group: str
    plural: str
    namespace: str
    rv: int
    obj: dict


class TooOld(Exception):
    """The requested resourceVersion is older than the kept window (HTTP 410 Gone)."""


@dataclass(eq=False)
class Watch:
    """One open watch: events of one resource, optionally one namespace, filtered by ``accept``."""

    group: str
    plural: str
    namespace: str | None
    accept: Callable[[dict], bool]
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)

    def wants(self, ev: Event) -> bool:
        return (ev.group == self.group and ev.plural == self.plural
                and (not self.namespace or ev.namespace == self.namespace))


class WatchHub:
    """Fan-out of store events to watches, with a replay window."""

    def __init__(self, store: Store, window: int = 5000) -> None:
        self.store = store
        self.start_rv = store.resource_version
        self.history: collections.deque[Event] = collections.deque(maxlen=window)
        self.watches: set[Watch] = set()
        self._remove = store.add_listener(self._on_event)

    def close(self) -> None:
        self._remove()

    def _on_event(self, event_type: str, obj: dict) -> None:
        from ..kinds import by_kind

        info = by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if info is None:
            return
        meta = obj.get("metadata", {})
        ev = Event(event_type, info.group, info.plural, meta.get("namespace", ""),
                   int(meta.get("resourceVersion", 0) or 0), obj)
        self.history.append(ev)
        for w in list(self.watches):
            if w.wants(ev):
                w.queue.put_nowait(ev)

    def open(self, group: str, plural: str, namespace: str | None, accept: Callable[[dict], bool],
             since: int | None) -> tuple[Watch, list[Event]]:
        """Register a watch; returns it and the events after ``since`` to replay first.

        Raises:
            TooOld: ``since`` is before the kept window.
        """
        w = Watch(group, plural, namespace, accept)
        replay: list[Event] = []
        if since is not None and since < self.store.resource_version:
            oldest = self.history[0].rv if self.history else self.store.resource_version + 1
            if since < self.start_rv or (since < oldest - 1 and len(self.history) == self.history.maxlen):
                raise TooOld(since)
            replay = [e for e in self.history if e.rv > since and w.wants(e)]
        self.watches.add(w)
        return w, replay

    def close_watch(self, w: Watch) -> None:
        self.watches.discard(w)
