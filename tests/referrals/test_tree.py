"""The pure nested-set arithmetic, without a database."""

from hypothesis import given
from hypothesis import strategies as st

from referrals.tree import compute_nested_sets


def rows_from_parents(parents, values=None):
    values = values or {}
    return [(i, p, *values.get(i, (None, None, None, None))) for i, p in enumerate(parents)]


def test_numbers_a_small_tree_depth_first():
    # 0 -> (1 -> 3), 2
    report = compute_nested_sets(rows_from_parents([None, 0, 0, 1]))

    assert report.expected == {0: (1, 1, 8, 0), 1: (1, 2, 5, 1), 3: (1, 3, 4, 2), 2: (1, 6, 7, 1)}


def test_a_valid_tree_maps_onto_itself():
    stored = {0: (1, 1, 8, 0), 2: (1, 2, 3, 1), 1: (1, 4, 7, 1), 3: (1, 5, 6, 2)}  # child 2 listed before 1

    report = compute_nested_sets(rows_from_parents([None, 0, 0, 1], stored))

    assert report.is_valid
    assert report.expected == stored


def test_wrong_values_are_reported_with_what_they_should_be():
    stored = {0: (1, 1, 6, 0), 1: (1, 2, 3, 1), 2: (1, 4, 9, 1)}

    report = compute_nested_sets(rows_from_parents([None, 0, 0], stored))

    assert not report.is_valid
    assert report.wrong == {2: ((1, 4, 9, 1), (1, 4, 5, 1))}
    assert "member 2" in report.describe()[0]


def test_duplicate_root_tree_ids_get_a_new_tree_id():
    stored = {0: (1, 1, 2, 0), 1: (1, 1, 2, 0)}

    report = compute_nested_sets(rows_from_parents([None, None], stored))

    assert report.expected[0] == (1, 1, 2, 0)
    assert report.expected[1] == (2, 1, 2, 0)
    assert list(report.wrong) == [1]


def test_a_cycle_is_reported_as_unreachable():
    report = compute_nested_sets(
        [(0, None, 1, 1, 2, 0), (1, 2, None, None, None, None), (2, 1, None, None, None, None)]
    )

    assert report.unreachable == [1, 2]
    assert not report.is_valid


def test_a_million_deep_chain_does_not_hit_the_recursion_limit():
    depth = 200_000
    report = compute_nested_sets((i, i - 1 if i else None, None, None, None, None) for i in range(depth))

    assert report.expected[depth - 1] == (1, depth, depth + 1, depth - 1)


@st.composite
def random_forest(draw):
    size = draw(st.integers(min_value=1, max_value=60))
    parents = [None]
    for i in range(1, size):
        parents.append(draw(st.one_of(st.none(), st.integers(min_value=0, max_value=i - 1))))
    return parents


@given(random_forest())
def test_computed_sets_are_a_valid_nesting_for_any_forest(parents):
    report = compute_nested_sets(rows_from_parents(parents))
    expected = report.expected

    sizes = [1] * len(parents)
    for i in reversed(range(len(parents))):
        if parents[i] is not None:
            sizes[parents[i]] += sizes[i]
    roots = [i for i, p in enumerate(parents) if p is None]
    assert len({expected[r][0] for r in roots}) == len(roots)
    for i, parent in enumerate(parents):
        tree_id, lft, rght, level = expected[i]
        assert rght - lft == 2 * sizes[i] - 1
        if parent is None:
            assert (lft, level) == (1, 0)
        else:
            p_tree, p_lft, p_rght, p_level = expected[parent]
            assert tree_id == p_tree
            assert p_lft < lft < rght < p_rght
            assert level == p_level + 1
    # and feeding the result back in is a fixed point
    again = compute_nested_sets(rows_from_parents(parents, expected))
    assert again.is_valid
