"""Strings many states hold, kept as one object each.

Intuition: every decoded event brings its own copy of each string it carries, so a page that a
thousand open sessions landed on would be a thousand equal strings of about 50 bytes each. A site
has far fewer distinct pages than open sessions, so holding each once costs little and saves
much. The table is bounded so that a site with unbounded page names (ids in paths) cannot grow
it without limit: beyond the bound, pages are kept as they came, which is what happened before.
Sharing never changes a result: the strings are equal either way.
"""

from __future__ import annotations

#: Pages and screens, each kept as one string object (see `shared_page`).
_PAGES: dict[str, str] = {}
#: At most this many distinct pages are shared (about 1 MB): a site with more keeps sharing
#: the first ones and keeps its own copy of the others, which is what it did before.
PAGES_SHARED = 10_000


def shared_page(page: str) -> str:
    """`page` as one string object shared by every session and waiting event that holds it.

    A site has far fewer pages than open sessions, and a session holds up to four of them
    (landing, exit, the quick-back pair): one copy per event would cost about 50 bytes each.
    """
    known = _PAGES.get(page)
    if known is not None:
        return known
    if len(_PAGES) < PAGES_SHARED:
        _PAGES[page] = page
    return page
