from hypothesis import given, settings, strategies as st

import pytest

from quicfast.proto.stream_table import StreamTable


def test_insert_lookup_replace_delete():
    table = StreamTable()
    a, b = object(), object()
    table[4] = a
    assert table[4] is a and 4 in table and len(table) == 1
    table[4] = b
    assert table[4] is b and len(table) == 1
    del table[4]
    assert 4 not in table and len(table) == 0
    with pytest.raises(KeyError):
        table[4]
    with pytest.raises(KeyError):
        del table[4]
    assert table.get(4, "missing") == "missing"


def test_grows_and_shrinks_with_the_number_of_streams():
    table = StreamTable()
    values = {sid: object() for sid in range(1, 40_000, 4)}
    for sid, value in values.items():
        table[sid] = value
    assert len(table) == len(values) and table.capacity >= 2 * len(values)
    assert all(table[sid] is value for sid, value in values.items())
    for sid in values:
        del table[sid]
    assert len(table) == 0 and table.capacity == 16


def test_ids_past_2_to_the_62_are_refused():
    with pytest.raises(OverflowError):
        StreamTable()[1 << 62] = 1


def test_values_are_released_on_removal_and_with_the_table():
    import sys
    value = object()
    before = sys.getrefcount(value)
    table = StreamTable()
    table[0] = value
    table[8] = value
    assert sys.getrefcount(value) == before + 2
    del table[0]
    assert sys.getrefcount(value) == before + 1
    del table
    assert sys.getrefcount(value) == before


# Ids of one stream type, ids spread over all four types, and ids chosen to
# collide: the last exercises the backward shift of long probe chains.
stream_ids = st.one_of(
    st.integers(0, 200).map(lambda n: 4 * n),
    st.integers(0, 2000),
    st.integers(0, 60).map(lambda n: (n << 40) | 3),
    st.integers(0, (1 << 62) - 1),
)


@settings(max_examples=300)
@given(st.lists(st.tuples(st.sampled_from(["set", "del", "get"]), stream_ids), max_size=400))
def test_behaves_like_a_dict(ops):
    table, model = StreamTable(), {}
    for op, sid in ops:
        if op == "set":
            table[sid] = model[sid] = ("v", sid, len(model))
        elif op == "del":
            assert (sid in table) == (sid in model)
            if sid in model:
                del table[sid], model[sid]
        else:
            assert table.get(sid) == model.get(sid)
    assert len(table) == len(model)
    assert sorted(table.keys()) == sorted(model)
    assert all(table[sid] == value for sid, value in model.items())
