"""Shared by the fuzz tests: Hypothesis strategies for JSON values."""

from __future__ import annotations

from hypothesis import strategies as st

# Text from the whole of Unicode, lone surrogates (category Cs) and NUL included.
any_char = st.characters(exclude_categories=())
small_text = st.text(any_char, max_size=12)
text = st.one_of(
    small_text,
    st.sampled_from(["", " ", "\x00", "a\x00b", "\ud800", "x\udfff", "\U0001f600", "é" * 300,
                     "task-\x00", "P0\ud800"]),
    st.builds(lambda c, n: c * n, st.sampled_from(["a", "é", "\ud800", "\x00"]),
              st.sampled_from([4_097, 70_000, 1_048_577])),
)
numbers = st.one_of(
    st.integers(min_value=-(2**64), max_value=2**64),
    st.sampled_from([0, 1, -1, 2**31, 2**53, 2**53 - 1, 2**63, 10**30, -(10**30), 10**300]),
    st.floats(allow_nan=True, allow_infinity=True),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, text)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4),
                            st.dictionaries(small_text, inner, max_size=4)),
    max_leaves=8,
)
