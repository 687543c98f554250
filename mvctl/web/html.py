"""HTML that cannot forget to escape: text becomes markup only through ``h()`` (or
``Html`` around a literal the module itself writes), and every string that reaches ``h()``
as a child or an attribute value is passed through ``html.escape`` first.

    h("td", {"class": "num"}, version)   # version is escaped, whatever it holds
    h("p", "a ", h("b", "bold"), " word") # Html children are kept as they are
"""

from __future__ import annotations

import html as _html
import re
from collections.abc import Iterable, Mapping

_TAG = re.compile(r"^[a-z][a-z0-9]*$")
_ATTR = re.compile(r"^[a-z][a-z0-9-]*$")
VOID = frozenset({"br", "hr", "input", "meta", "link", "img"})


class Html(str):
    """Markup that is already safe: made only by ``h()``, ``join()`` and the module's own
    literals. Concatenating it with a plain ``str`` gives a plain ``str`` (escaped again)."""

    __slots__ = ()


def text(value: object) -> Html:
    """Any value as escaped text (None: nothing; an ``Html`` stays as it is)."""
    if value is None:
        return Html("")
    if isinstance(value, Html):
        return value
    return Html(_html.escape(str(value), quote=True))


def _children(items: Iterable[object]) -> Iterable[Html]:
    for item in items:
        if isinstance(item, str | int | float) or item is None:
            yield text(item)
        else:
            assert isinstance(item, Iterable)  # noqa: S101 - a nested list of children
            yield from _children(item)


def h(tag: str, *children: object, attrs: Mapping[str, object] | None = None) -> Html:
    """``<tag attrs>children</tag>``: the tag and attribute names are full-string checked,
    attribute values and text children escaped; an attribute set to True is written bare,
    one set to False or None left out."""
    if not _TAG.match(tag):
        raise ValueError(f"not a tag name: {tag!r}")
    parts = [f"<{tag}"]
    for name, value in (attrs or {}).items():
        name = name.rstrip("_").replace("_", "-")  # class_ -> class, aria_label -> aria-label
        if not _ATTR.match(name):
            raise ValueError(f"not an attribute name: {name!r}")
        if value is None or value is False:
            continue
        parts.append(f" {name}" if value is True else f' {name}="{text(value)}"')
    parts.append(">")
    if tag in VOID:
        return Html("".join(parts))
    parts.extend(_children(children))
    parts.append(f"</{tag}>")
    return Html("".join(parts))


def join(items: Iterable[object]) -> Html:
    """Children side by side, each escaped unless already ``Html``."""
    return Html("".join(_children(items)))


def document(title: str, style: str, *body: object) -> Html:
    """A whole page: doctype, charset, the page's title and its inline style."""
    head = h(
        "head",
        h("meta", attrs={"charset": "utf-8"}),
        h("meta", attrs={"name": "viewport", "content": "width=device-width, initial-scale=1"}),
        h("title", title),
        h("style", Html(style)),  # the module's own constant, never user text
    )
    return Html("<!doctype html>" + h("html", head, h("body", *body), attrs={"lang": "en"}))
