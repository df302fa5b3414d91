"""Signal receivers of the taggers app (connected in TaggersConfig.ready)."""

from __future__ import annotations

import os
from typing import Any

ML_QUEUES = frozenset({"ml", "ml_cpu", "ml_caption"})
OFFLINE_MESSAGE = (
    "This worker consumes an ML queue ({queues}) but HF_HUB_OFFLINE is not 1. Workers never download "
    "models: start it with HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_HOME=<model dir>/hf_home in its "
    "environment (docs/operations.md#ml-workers) and provision weights with `manage.py models provision`."
)


def consumed_queues(worker: Any) -> set[str]:
    queues = worker.app.amqp.queues
    selected = queues.consume_from if queues.consume_from else queues
    return {str(name) for name in selected}


def worker_init(sender: Any = None, **kwargs: Any) -> None:
    """A worker on an ML queue refuses to start without HF_HUB_OFFLINE=1 (huggingface_hub reads
    it at import, so it must be set before Python starts)."""
    if sender is None:
        return
    ml = sorted(consumed_queues(sender) & ML_QUEUES)
    if ml and os.environ.get("HF_HUB_OFFLINE") != "1":
        raise SystemExit(OFFLINE_MESSAGE.format(queues=", ".join(ml)))
