"""statekernel.specs: reference specs, real business workflows declared as data.

Each module exposes ``SPEC`` (a :class:`statekernel.kernel.Spec`) with its context and payload
classes, guards and invariants; its docstring tells the story, the roles, the rules and how
large its explored state space is.

- :mod:`statekernel.specs.enrollment`: an application goes draft -> submitted -> verified ->
  approved or rejected -> archived, with four-eyes approval.
- :mod:`statekernel.specs.payment`: a payment intent is authorized, captured and refunded in
  parts, voided, declined or disputed, and the ledger always adds up.
- :mod:`statekernel.specs.booking`: seats for a session are held (holds expire), confirmed and
  cancelled, and never overbooked.
- :mod:`statekernel.specs.order`: checkout from cart to delivery; cancelling a paid order
  refunds it first (a compensating action).

Use one as ``from statekernel.specs import payment`` then ``payment.SPEC``, or from the
command line as ``statekernel check statekernel.specs.payment:SPEC``.
"""

from . import booking, enrollment, order, payment

__all__ = ["booking", "enrollment", "order", "payment"]
