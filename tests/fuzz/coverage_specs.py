"""Specs whose reports say what was and was not shown (CLI targets for ``check``).

``LADDER`` has a finite space the explorer sees whole in a blink (so it is PROVED), but its
top is :data:`RUNGS` ``climb`` steps up: more steps than a fuzz run takes (50 by default), so
whatever the seed, no run reaches the rungs above the 50th. Its payloads come from examples
(``paint``), from samples of the payload type (``label``, which has none) or are absent
(``climb``).
"""

from __future__ import annotations

import attrs

from statekernel.kernel import Spec, Transition, invariant

RUNGS = 60
"""How many ``climb`` steps lead from the bottom to the top."""


@attrs.frozen
class Ladder:
    rung: int = 0
    colour: str = ""
    text: str = ""


@attrs.frozen
class Paint:
    colour: str


@attrs.frozen
class Label:
    text: str


@invariant
def rung_matches_state(state: str, ctx: Ladder) -> bool:
    """The context's rung is the one the state names."""
    return state == f"rung{ctx.rung}" or (state == "top" and ctx.rung == RUNGS)


def _ladder() -> Spec:
    states = [f"rung{i}" for i in range(RUNGS)] + ["top"]
    climbs = [
        Transition(
            "climb",
            states[i],
            states[i + 1],
            update=lambda c, p: attrs.evolve(c, rung=c.rung + 1),
        )
        for i in range(RUNGS)
    ]
    return Spec(
        name="ladder",
        version=1,
        context=Ladder,
        initial="rung0",
        states=states,
        final=["top"],
        transitions=[
            *climbs,
            Transition(
                "paint",
                "rung0",
                "rung0",
                payload=Paint,
                update=lambda c, p: attrs.evolve(c, colour=p.colour),
                examples=[Paint("red"), Paint("blue")],
            ),
            Transition(
                "label",
                "rung0",
                "rung0",
                payload=Label,
                update=lambda c, p: attrs.evolve(c, text=p.text),
            ),
        ],
        invariants=[rung_matches_state],
    )


LADDER = _ladder()
