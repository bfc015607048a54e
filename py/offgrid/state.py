"""The controller's states and where each may go; the controller (controller.py)
and its handlers (answers.py, conversation_actions.py, storage_actions.py,
backend_actions.py) all compare against these."""

from __future__ import annotations

import enum


class State(enum.Enum):
    BOOTING = "booting"  # waiting for the engine's model list
    LOADING = "loading"  # a model is downloading or loading
    READY = "ready"  # a question can be sent
    GENERATING = "generating"  # counting the prompt, then streaming the answer
    IDLE = "idle"  # no model loaded (after Unload)
    FAILED = "failed"  # no model could be loaded; the error says why


# Where each state may go. Update it whenever a state is added.
# READY is reachable from every state but GENERATING's own, because a script
# (window.offgrid, relayed by the controller) may load a model.
TRANSITIONS: dict[State, set[State]] = {
    State.BOOTING: {State.LOADING, State.READY, State.FAILED},
    State.LOADING: {State.READY, State.FAILED, State.IDLE},
    State.READY: {State.GENERATING, State.LOADING, State.IDLE, State.FAILED},
    State.GENERATING: {State.READY, State.FAILED},
    State.IDLE: {State.LOADING, State.READY, State.FAILED},
    State.FAILED: {State.LOADING, State.READY, State.IDLE},
}

# States in which a model is loaded and the person's questions go to the controller
# (which refuses one while an answer is being written). In every other state the
# view holds the question and sends it when the controller enters one of these.
TAKES_QUESTIONS = frozenset({State.READY, State.GENERATING})
