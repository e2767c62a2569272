"""The automaton runtime: NFA programs, the reference and Numba engines, keyed state, timers.

It does no I/O and imports neither `cep` nor `service`.
"""
