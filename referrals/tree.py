"""Nested-set arithmetic on plain tuples: no ORM, testable without a database.

The parent links are the truth; from them this computes the `tree_id`, `lft`,
`rght` and `level` every node should have. It keeps the current order where it
can (roots by their tree id, siblings by their `lft`) so that a valid tree maps
onto itself exactly: a node is wrong if and only if its stored values differ
from the computed ones. The checker, the repair and the benchmark's bulk loader
all use it.
"""

from collections.abc import Iterable
from dataclasses import dataclass, field

# (id, parent_id, tree_id, lft, rght, level) as stored; tree_id/lft/rght/level may be None.
Row = tuple[int, int | None, int | None, int | None, int | None, int | None]
# (tree_id, lft, rght, level)
NestedSet = tuple[int, int, int, int]

_LAST = float("inf")
PENDING = 0  # lft and rght of a member whose nested-set fields are not computed yet (real values start at 1)


@dataclass
class TreeReport:
    expected: dict[int, NestedSet] = field(default_factory=dict)
    wrong: dict[int, tuple[NestedSet | None, NestedSet]] = field(default_factory=dict)
    unreachable: list[int] = field(default_factory=list)
    checked: int = 0
    pending: int = 0  # members not placed yet (lft = rght = 0): not checked, they wait for the index pass

    @property
    def is_valid(self) -> bool:
        return not self.wrong and not self.unreachable

    def describe(self, limit: int = 50) -> list[str]:
        lines = [
            f"member {member_id}: parent links form a cycle or point outside every tree"
            for member_id in self.unreachable[:limit]
        ]
        for member_id, (actual, expected) in list(self.wrong.items())[: max(limit - len(lines), 0)]:
            lines.append(f"member {member_id}: (tree_id, lft, rght, level) is {actual}, parent links say {expected}")
        hidden = len(self.unreachable) + len(self.wrong) - len(lines)
        if hidden > 0:
            lines.append(f"... and {hidden} more")
        return lines


def compute_nested_sets(rows: Iterable[Row]) -> TreeReport:
    """Compute the nested sets the parent links imply, and compare them with the stored ones.

    Pending members (lft = rght = 0, see `plan_index_batch`) are counted, not checked: the placed members must
    form valid nested sets on their own, since a pending member only ever hangs below placed ones.
    """
    stored: dict[int, Row] = {}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    pending = 0
    for row in rows:
        node_id, parent_id = row[0], row[1]
        if row[3] == PENDING and row[4] == PENDING:
            pending += 1
            continue
        stored[node_id] = row
        if parent_id is None:
            roots.append(node_id)
        else:
            children.setdefault(parent_id, []).append(node_id)

    def order_key(node_id: int) -> tuple[float, int]:
        lft = stored[node_id][3]
        return (_LAST if lft is None else lft, node_id)

    def tree_key(node_id: int) -> tuple[float, int]:
        tree_id = stored[node_id][2]
        return (_LAST if tree_id is None else tree_id, node_id)

    for siblings in children.values():
        if len(siblings) > 1:
            siblings.sort(key=order_key)
    roots.sort(key=tree_key)

    report = TreeReport(checked=len(stored), pending=pending)
    expected = report.expected
    used_tree_ids: set[int] = set()
    next_tree_id = max((stored[r][2] or 0 for r in roots), default=0) + 1
    for root in roots:
        tree_id = stored[root][2]
        if tree_id is None or tree_id in used_tree_ids:
            tree_id = next_tree_id
            next_tree_id += 1
        used_tree_ids.add(tree_id)
        _number_tree(root, tree_id, children, expected)

    for node_id, row in stored.items():
        want = expected.get(node_id)
        if want is None:
            report.unreachable.append(node_id)
        elif row[2:6] != want:
            have = None if None in row[2:6] else row[2:6]
            report.wrong[node_id] = (have, want)
    report.unreachable.sort()
    return report


def _number_tree(root: int, tree_id: int, children: dict[int, list[int]], out: dict[int, NestedSet]) -> None:
    _place(root, tree_id, 1, 0, children, out)


# --- Deferred indexing: many new members placed in one pass -------------------------------------------------


@dataclass
class IndexPlan:
    """Where a batch of pending members goes, and how every indexed value of each tree moves to make room.

    `shifts[tree_id] = (points, cumulative)`: an indexed `lft` or `rght` value `v` of that tree becomes
    `v + 2 * cumulative[k]`, where `k` is how many points are `<= v` (`cumulative[0] == 0`). `positions` are the
    final (tree_id, lft, rght, level) of the pending members placed. `skipped` are pending members whose sponsor
    was neither indexed nor placed in this batch; they wait for the next one.
    """

    positions: dict[int, NestedSet] = field(default_factory=dict)
    shifts: dict[int, tuple[list[int], list[int]]] = field(default_factory=dict)
    skipped: list[int] = field(default_factory=list)

    def shift(self, tree_id: int, value: int) -> int:
        points, cumulative = self.shifts.get(tree_id, ((), (0,)))
        count = 0
        low, high = 0, len(points)
        while low < high:  # how many points are <= value
            middle = (low + high) // 2
            if points[middle] <= value:
                low = middle + 1
            else:
                high = middle
            count = low
        return value + 2 * cumulative[count]


def plan_index_batch(
    pending: Iterable[tuple[int, int | None]],
    anchors: dict[int, NestedSet],
    indexed_children: Iterable[tuple[int, int, int]] = (),
    *,
    next_tree_id: int = 1,
) -> IndexPlan:
    """Place pending members (id, sponsor id) into the nested sets in one pass.

    `anchors` holds the nested set of every indexed sponsor of a pending member. Each pending member goes among
    its sponsor's children in id order, as `Member.objects.rebuild()` would put it: before the first indexed
    child with a larger id (`indexed_children`: (sponsor id, child id, child lft) for such children), else last.
    A pending member's pending sponsor must come earlier in `pending` (ids grow with join time, so ordering by
    id guarantees it). A pending member without a sponsor starts a tree of its own at `next_tree_id` onwards.
    """
    pending = sorted(pending)
    pending_ids = {member_id for member_id, _parent in pending}
    children: dict[int, list[int]] = {}
    placed_tops: list[tuple[int, int]] = []  # (sponsor or 0 for a new root, member id)
    plan = IndexPlan()
    reachable: set[int] = set()
    for member_id, parent_id in pending:
        if parent_id is None:
            placed_tops.append((0, member_id))
            reachable.add(member_id)
        elif parent_id in anchors:
            placed_tops.append((parent_id, member_id))
            reachable.add(member_id)
        elif parent_id in pending_ids and parent_id in reachable:
            children.setdefault(parent_id, []).append(member_id)
            reachable.add(member_id)
        else:
            plan.skipped.append(member_id)

    sizes: dict[int, int] = {}
    for member_id in sorted(reachable, reverse=True):  # children have larger ids than their sponsors
        sizes[member_id] = 1 + sum(sizes[child] for child in children.get(member_id, ()))

    later_children: dict[int, list[tuple[int, int]]] = {}
    for parent_id, child_id, child_lft in indexed_children:
        later_children.setdefault(parent_id, []).append((child_id, child_lft))
    for siblings in later_children.values():
        siblings.sort()

    # Group the top pending members by insertion point: (tree_id, point) → members in id order.
    groups: dict[tuple[int, int], list[int]] = {}
    levels: dict[tuple[int, int], int] = {}
    new_trees: list[int] = []
    for parent_id, member_id in placed_tops:
        if parent_id == 0:
            new_trees.append(member_id)
            continue
        tree_id, _lft, rght, level = anchors[parent_id]
        point = next((lft for child_id, lft in later_children.get(parent_id, ()) if child_id > member_id), rght)
        groups.setdefault((tree_id, point), []).append(member_id)
        levels[(tree_id, point)] = level + 1

    by_tree: dict[int, list[int]] = {}
    for tree_id, point in groups:
        by_tree.setdefault(tree_id, []).append(point)
    for tree_id, points in by_tree.items():
        points.sort()
        cumulative = [0]
        for point in points:
            members = groups[(tree_id, point)]
            start = point + 2 * cumulative[-1]
            for member_id in members:
                start = _place(member_id, tree_id, start, levels[(tree_id, point)], children, plan.positions)
            cumulative.append(cumulative[-1] + sum(sizes[member_id] for member_id in members))
        plan.shifts[tree_id] = (points, cumulative)

    for offset, member_id in enumerate(new_trees):
        _place(member_id, next_tree_id + offset, 1, 0, children, plan.positions)
    return plan


def _place(root: int, tree_id: int, left: int, level: int, children: dict[int, list[int]], out: dict) -> int:
    """Number the subtree under `root` from `left` at `level`; return the value after its `rght`.

    An iterative depth-first walk: a chain a million deep must not hit the recursion limit.
    """
    counter = left
    lft_of: dict[int, int] = {}
    stack: list[tuple[int, int, bool]] = [(root, level, False)]
    while stack:
        node, depth, leaving = stack.pop()
        if leaving:
            out[node] = (tree_id, lft_of.pop(node), counter, depth)
            counter += 1
            continue
        lft_of[node] = counter
        counter += 1
        stack.append((node, depth, True))
        kids = children.get(node)
        if kids:
            stack.extend((kid, depth + 1, False) for kid in reversed(kids))
    return counter
