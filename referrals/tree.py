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


@dataclass
class TreeReport:
    expected: dict[int, NestedSet] = field(default_factory=dict)
    wrong: dict[int, tuple[NestedSet | None, NestedSet]] = field(default_factory=dict)
    unreachable: list[int] = field(default_factory=list)
    checked: int = 0

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
    """Compute the nested sets the parent links imply, and compare them with the stored ones."""
    stored: dict[int, Row] = {}
    children: dict[int, list[int]] = {}
    roots: list[int] = []
    for row in rows:
        node_id, parent_id = row[0], row[1]
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

    report = TreeReport(checked=len(stored))
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
    # Iterative depth-first walk: a chain a million deep must not hit the recursion limit.
    counter = 1
    lft_of: dict[int, int] = {}
    stack: list[tuple[int, int, bool]] = [(root, 0, False)]
    while stack:
        node, level, leaving = stack.pop()
        if leaving:
            out[node] = (tree_id, lft_of.pop(node), counter, level)
            counter += 1
            continue
        lft_of[node] = counter
        counter += 1
        stack.append((node, level, True))
        kids = children.get(node)
        if kids:
            stack.extend((kid, level + 1, False) for kid in reversed(kids))
