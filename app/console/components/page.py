"""Pieces every page of the console is built of, so that the pages look alike."""

from __future__ import annotations

import dash_mantine_components as dmc


def note(text: str, **kwargs: object) -> dmc.Text:
    """A line of small, dimmed explanation (what a section shows, where its figures come from)."""
    return dmc.Text(text, size="sm", c="dimmed", **kwargs)


def heading(title: str, explanation: str, note_id: str | None = None) -> dmc.Group:
    """A page's title with its one-line explanation on the same baseline; ``note_id`` when a
    callback rewrites the explanation (the grid map's slot)."""
    explained = note(explanation) if note_id is None else note(explanation, id=note_id)
    return dmc.Group([dmc.Title(title, order=3), explained], align="baseline")
