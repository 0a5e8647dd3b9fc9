"""The playbook error (:mod:`engine.analytics.playbook`), apart so that the modules a playbook
is parsed with (:mod:`engine.analytics.spend_gate`, :mod:`engine.analytics.bundles`) raise it
without importing the playbook."""

from __future__ import annotations

from engine.errors import InvalidFile


class PlaybookError(InvalidFile):
    """A playbook field is missing or invalid; the message names it."""

    subject = "playbook"
