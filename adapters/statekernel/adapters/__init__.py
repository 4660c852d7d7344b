"""statekernel.adapters: the imperative shell around the pure kernel.

Stores (``memory``, ``sqlite``, ``postgres``), the command-line interface (``cli``) and
interop with the ``transitions`` package (``transitions``). Each lives in its own submodule so
that importing one driver never imports another.
"""

__all__: list[str] = []
