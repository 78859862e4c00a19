from hypothesis import given, strategies as st

from quicfast.proto.ranges import RangeSet
from tests.helpers.oracles import ranges_of


def test_in_order_values_merge_into_one_range():
    rs = RangeSet()
    for pn in range(100):
        rs.add_value(pn)
    assert list(rs) == [range(0, 100)]


def test_gaps_and_fill():
    rs = RangeSet()
    for pn in (0, 1, 2, 5, 6, 9):
        rs.add_value(pn)
    assert list(rs) == [range(0, 3), range(5, 7), range(9, 10)]
    assert list(rs.descending()) == [range(9, 10), range(5, 7), range(0, 3)]
    rs.add_range(3, 9)
    assert list(rs) == [range(0, 10)]


def test_overlapping_and_adjacent_ranges_merge():
    rs = RangeSet()
    rs.add_range(10, 20)
    rs.add_range(30, 40)
    rs.add_range(50, 60)
    rs.add_range(15, 52)
    assert list(rs) == [range(10, 60)]
    rs.add_range(0, 10)
    assert list(rs) == [range(0, 60)]
    rs.add_range(5, 5)  # empty: ignored
    assert len(rs) == 1


def test_remove_below_cuts_ranges():
    rs = RangeSet(ranges=[range(0, 3), range(5, 10), range(20, 25)])
    rs.discard_below(7)
    assert list(rs) == [range(7, 10), range(20, 25)]
    rs.discard_below(30)
    assert list(rs) == []


def test_count_bounded_drops_lowest():
    rs = RangeSet(max_ranges=3)
    for pn in range(0, 20, 2):
        rs.add_value(pn)
    assert list(rs) == [range(14, 15), range(16, 17), range(18, 19)]


def test_membership():
    rs = RangeSet(ranges=[range(5, 10), range(20, 25)])
    assert 5 in rs and 9 in rs and 20 in rs
    assert 4 not in rs and 10 not in rs and 19 not in rs and 25 not in rs


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20)), max_size=60), st.integers(0, 320))
def test_matches_set_model(inserts, bound):
    rs = RangeSet()
    model: set[int] = set()
    for start, length in inserts:
        rs.add_range(start, start + length)
        model.update(range(start, start + length))
    assert list(rs) == ranges_of(model)
    for v in range(0, 330, 7):
        assert (v in rs) == (v in model)
    rs.discard_below(bound)
    assert list(rs) == ranges_of({v for v in model if v >= bound})


@given(st.lists(st.integers(0, 200), max_size=80), st.integers(1, 6))
def test_bounded_set_keeps_highest_ranges(values, limit):
    rs = RangeSet(max_ranges=limit)
    model: set[int] = set()
    for v in values:
        rs.add_value(v)
        model.add(v)
        assert len(rs) <= limit
    # Every range kept is a suffix-consistent view: ranges held are disjoint,
    # sorted, and each value held was inserted.
    held = [v for r in rs for v in r]
    assert held == sorted(held)
    assert set(held) <= model
    if model:
        assert max(model) in rs
