"""statekernel.specs: reference specs, real business workflows declared as data."""

__all__: list[str] = []
