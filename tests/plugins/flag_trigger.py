"""A new trigger kind for odop in one file: run the task once when a flag file appears."""

import os

from odop.plugins import TRIGGERS
from odop.tasks.triggers.base import Trigger
from odop.tasks.triggers.spec import trigger_path


class FlagTrigger(Trigger):
    """``{"flag": "path"}``: submits ``{"path": ...}`` once, when the file exists."""

    kind = "flag"
    form = "flag (file path)"

    @classmethod
    def normalise(cls, value, task):
        return {"kind": "flag", "path": trigger_path(value, "flag", task)}

    @classmethod
    def build(cls, trigger, *, key, state, base_dir=".", auto_commit=True, **_):
        return cls(key, state, os.path.join(base_dir, trigger["path"]), auto_commit)

    def __init__(self, key, state, path, auto_commit):
        super().__init__(key, state, auto_commit=auto_commit)
        self.path, self.seen = path, f"{key}/flag"

    def next_due(self, now):
        return now + 0.1

    def _poll(self, now):
        if self.state.get(self.seen) or not os.path.exists(self.path):
            return []
        self._stage(self.seen, True)
        return [{"path": self.path}]


TRIGGERS.register(FlagTrigger)
