"""Deferred placement of new members in the nested sets (referrals.services.tree_index_pending).

Joins write the parent link and leave lft = rght = 0; one pass places every pending member. These tests switch
the inline placement (the embedded default) off to see the pending state.
"""

import contextlib
import threading
import time

import pytest
from django.core.management import call_command
from django.db import OperationalError, connection, connections, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from referrals import services
from referrals.locks import INDEX_RUN_APPLICATION_NAME, TREE_LOCK_KEY, tree_index_pass_mark, tree_lock_acquire
from referrals.models import Member
from referrals.selectors import (
    member_pending_team,
    member_team_level,
    member_team_level_counts,
    member_team_size,
    member_upline,
    tree_check,
)
from referrals.services import member_delete, member_join, member_move, tree_index_pending
from referrals.tree import PENDING
from tests.factories import MemberFactory, UserFactory


@pytest.fixture
def deferred(settings):
    settings.REFERRALS_TREE_INDEX_INLINE = False


def _fields() -> dict[int, tuple[int, int, int, int]]:
    return {pk: tuple(rest) for pk, *rest in Member.objects.values_list("pk", "tree_id", "lft", "rght", "level")}


def _join(sponsor) -> Member:
    return member_join(user=UserFactory(), sponsor=sponsor)


def _same_up_to_tree_numbering(ours: dict, theirs: dict) -> bool:
    """Equal nested sets; tree ids may be numbered differently (rebuild numbers trees 1, 2, … in order)."""
    mapping: dict[int, int] = {}
    for pk, (tree_id, lft, rght, level) in ours.items():
        other = theirs[pk]
        if (lft, rght, level) != other[1:] or mapping.setdefault(tree_id, other[0]) != other[0]:
            return False
    return len(set(mapping.values())) == len(mapping)


def _rebuilt() -> dict[int, tuple[int, int, int, int]]:
    """What `Member.objects.rebuild()` computes, without its final bulk_update: that write renumbers tree ids
    row by row, which the one-root-per-tree constraint can refuse half-way on SQLite."""
    manager = Member.objects
    manager._find_out_rebuild_fields()
    children = manager._get_children()
    nodes: list[Member] = []
    for index, root in enumerate(manager._get_parents()):
        manager._rebuild_helper(node=root, left=1, tree_id=1 + index, children=children, nodes_to_update=nodes, level=0)
    return {node.pk: (node.tree_id, node.lft, node.rght, node.level) for node in nodes}


def assert_matches_rebuild() -> None:
    assert not Member.objects.filter(lft=PENDING).exists()
    assert _same_up_to_tree_numbering(_fields(), _rebuilt())
    # and siblings stand in join (id) order, as a rebuild from the parent links alone would put them
    for parent_id in set(Member.objects.exclude(parent=None).values_list("parent_id", flat=True)):
        ids = list(Member.objects.filter(parent_id=parent_id).order_by("lft").values_list("pk", flat=True))
        assert ids == sorted(ids)


# --- Joins leave members pending; one pass places them ---------------------------------------------------


@pytest.mark.django_db
def test_a_deferred_join_is_pending_until_the_pass_places_every_member(deferred):
    root = MemberFactory()
    before = _fields()
    a = _join(root)
    b = _join(a)  # under a pending sponsor
    c = _join(root)

    assert [m.lft for m in Member.objects.filter(pk__in=[a.pk, b.pk, c.pk])] == [PENDING] * 3
    assert _fields()[root.pk] == before[root.pk]  # nobody shifted
    assert [m.pk for m in member_upline(b, 3)] == [a.pk, root.pk]  # uplines follow parent links at once

    assert tree_index_pending() == 3
    assert tree_check().is_valid
    root.refresh_from_db()
    assert list(root.get_descendants().values_list("pk", flat=True)) == [a.pk, b.pk, c.pk]
    assert Member.objects.get(pk=b.pk).level == 2
    assert tree_index_pending() == 0  # a second run finds nothing
    assert_matches_rebuild()


@pytest.mark.django_db
def test_pending_members_are_counted_in_team_figures_before_they_are_placed(deferred):
    # given: root > a > b placed, then x joins under b and y under x (both pending)
    root = MemberFactory()
    a = _join(root)
    b = _join(a)
    tree_index_pending()
    root, a, b = (Member.objects.get(pk=m.pk) for m in (root, a, b))
    x = _join(b)
    y = _join(x)

    # then: everyone above sees them, at the right relative level
    assert member_pending_team(root) == {3: [x.pk], 4: [y.pk]}
    assert member_pending_team(a) == {2: [x.pk], 3: [y.pk]}
    assert member_team_size(root) == 4
    assert member_team_level_counts(a, 3) == {1: 1, 2: 1, 3: 1}
    pending_x = Member.objects.get(pk=x.pk)
    assert member_pending_team(pending_x) == {1: [y.pk]}
    assert member_team_size(pending_x) == 1
    assert [m.pk for m in member_team_level(a, 2)] == [x.pk]

    # and after the pass the same figures come from the nested sets alone
    tree_index_pending()
    root, a = Member.objects.get(pk=root.pk), Member.objects.get(pk=a.pk)
    assert member_pending_team(root) == {}
    assert member_team_size(root) == 4 == root.get_descendant_count()
    assert member_team_level_counts(a, 3) == {1: 1, 2: 1, 3: 1}
    assert [m.pk for m in member_team_level(a, 2)] == [x.pk]


@pytest.mark.django_db
def test_a_new_member_goes_among_its_sponsors_children_in_join_order_after_a_move(deferred, staff_user):
    # given: root has a placed child c1 and a pending one p; c3 (a root, so placed, with a larger id than p)
    # is moved under root while p is still pending
    root = MemberFactory()
    c1 = _join(root)
    tree_index_pending()
    p = _join(root)
    c3 = MemberFactory()
    assert p.pk < c3.pk
    member_move(member=c3, new_sponsor=root, actor=staff_user, reason="test")
    assert Member.objects.get(pk=p.pk).lft == PENDING  # the move placed only what it needed

    # when
    tree_index_pending()

    # then: p goes before c3, as join order says
    ids = list(Member.objects.filter(parent=root).order_by("lft").values_list("pk", flat=True))
    assert ids == [c1.pk, p.pk, c3.pk]
    assert_matches_rebuild()


@pytest.mark.django_db
def test_a_crash_in_the_middle_of_a_pass_changes_nothing_and_the_next_pass_completes(deferred, monkeypatch):
    root = MemberFactory()
    for _ in range(3):
        _join(root)
    tree_index_pending()
    sponsor = Member.objects.filter(parent=root).first()
    for _ in range(4):
        _join(sponsor)
    before = _fields()

    def crash(plan):
        raise RuntimeError("worker lost mid-batch")

    # when: the pass dies after the shifting UPDATE, before the new members' own fields are written
    monkeypatch.setattr(services, "_write_positions", crash)
    with pytest.raises(RuntimeError):
        tree_index_pending()

    # then: all or nothing
    assert _fields() == before
    monkeypatch.undo()
    assert tree_index_pending() == 4
    assert tree_check().is_valid
    assert_matches_rebuild()


@pytest.mark.django_db
def test_the_checker_counts_pending_members_without_calling_them_wrong(deferred, capsys):
    root = MemberFactory()
    _join(root)
    _join(root)

    call_command("check_referral_tree")

    out = capsys.readouterr().out
    assert "OK: 1 members" in out and "2 new member(s) wait for the index pass" in out


@pytest.mark.django_db
def test_delete_and_move_place_only_the_members_they_touch(deferred, staff_user):
    root, other = MemberFactory(), MemberFactory()
    leaf = _join(root)
    mover = _join(root)
    below = _join(mover)
    bystander = _join(root)

    member_delete(member=leaf, actor=staff_user, reason="test")
    member_move(member=mover, new_sponsor=other, actor=staff_user, reason="test")

    assert tree_check().is_valid
    other.refresh_from_db()
    assert list(other.get_descendants().values_list("pk", flat=True)) == [mover.pk]
    pending = set(Member.objects.filter(lft=PENDING).values_list("pk", flat=True))
    assert pending == {below.pk, bystander.pk}  # placed later, where their sponsors are by then
    assert member_pending_team(Member.objects.get(pk=other.pk)) == {2: [below.pk]}
    tree_index_pending()
    assert [m.pk for m in Member.objects.get(pk=other.pk).get_descendants()] == [mover.pk, below.pk]
    assert_matches_rebuild()


# --- Property: any mix of joins, moves, deletes and passes ends where rebuild() would ---------------------

OPERATIONS = st.lists(
    st.one_of(
        st.tuples(st.just("join"), st.integers(0, 10_000)),
        st.tuples(st.just("root"), st.just(0)),
        st.tuples(st.just("move"), st.integers(0, 10_000), st.integers(-1, 10_000)),
        st.tuples(st.just("delete"), st.integers(0, 10_000)),
        st.tuples(st.just("index"), st.integers(1, 4)),
    ),
    min_size=1,
    max_size=25,
)


class _Rollback(Exception):
    pass


@pytest.mark.django_db
@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(operations=OPERATIONS)
def test_random_joins_moves_deletes_and_passes_end_as_rebuild_would(deferred, staff_user, operations):
    try:
        with transaction.atomic():
            members = [MemberFactory()]
            for operation in operations:
                kind = operation[0]
                if kind == "join":
                    members.append(_join(members[operation[1] % len(members)]))
                elif kind == "root":
                    members.append(MemberFactory())
                elif kind == "move":
                    member = members[operation[1] % len(members)]
                    sponsor = None if operation[2] < 0 else members[operation[2] % len(members)]
                    with contextlib.suppress(services.ReferralError):  # a cycle or no change: refused
                        member_move(member=member, new_sponsor=sponsor, actor=staff_user, reason="property")
                elif kind == "delete":
                    member = members[operation[1] % len(members)]
                    try:
                        member_delete(member=member, actor=staff_user, reason="property")
                        members.remove(member)
                    except services.ReferralError:
                        pass  # has a team
                    if not members:
                        members.append(MemberFactory())
                else:
                    tree_index_pending(limit=operation[1])
                assert tree_check().is_valid
            while tree_index_pending(limit=3):
                pass
            assert_matches_rebuild()
            raise _Rollback
    except _Rollback:
        pass


# --- PostgreSQL: joins do not wait for the tree lock; concurrent joins and passes stay exact -------------


def _in_thread(target, *args):
    errors: list[BaseException] = []

    def run():
        try:
            target(*args)
        except BaseException as error:
            errors.append(error)
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    return thread, errors


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_join_does_not_wait_for_a_pass_or_a_move_holding_the_tree_lock(settings, monkeypatch):
    settings.REFERRALS_TREE_INDEX_INLINE = False
    assert connection.vendor == "postgresql"
    # The index run the join asks for after commit would run here, eagerly, and wait for the lock: in production
    # it goes to a worker. Record the request instead.
    requested = []
    monkeypatch.setattr(services, "tree_index_requested", lambda: requested.append(1))
    sponsor = MemberFactory()
    user = UserFactory()
    holding, release = threading.Event(), threading.Event()

    def hold_the_tree_lock():
        with transaction.atomic():
            tree_lock_acquire()
            holding.set()
            release.wait(timeout=30)

    holder, errors = _in_thread(hold_the_tree_lock)
    assert holding.wait(timeout=10)
    try:
        started = time.monotonic()
        member = member_join(user=user, sponsor=sponsor)
        elapsed = time.monotonic() - started
    finally:
        release.set()
        holder.join(timeout=30)
    assert errors == []
    assert elapsed < 2  # it did not wait for the 30 s the lock could be held
    assert requested == [1]  # and it asked for a placement run once committed
    assert Member.objects.get(pk=member.pk).parent_id == sponsor.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_joins_with_passes_running_end_in_an_exact_tree(settings, monkeypatch):
    settings.REFERRALS_TREE_INDEX_INLINE = False
    monkeypatch.setattr(services, "tree_index_requested", lambda: None)  # the indexer thread below does the work
    roots = [MemberFactory() for _ in range(2)]
    sponsors = [*roots, *(member_join(user=UserFactory(), sponsor=roots[i % 2]) for i in range(6))]
    tree_index_pending()
    users = [[UserFactory() for _ in range(25)] for _ in range(8)]
    intended: dict[int, int] = {}
    lock = threading.Lock()
    barrier = threading.Barrier(9)
    done = threading.Event()

    def joiner(batch, offset):
        barrier.wait(timeout=30)
        for index, user in enumerate(batch):
            sponsor = sponsors[(offset + index) % len(sponsors)]
            member = member_join(user=user, sponsor=sponsor)
            with lock:
                intended[member.pk] = sponsor.pk

    def indexer():
        barrier.wait(timeout=30)
        while not done.is_set():
            tree_index_pending(limit=40)

    threads = [_in_thread(joiner, batch, offset) for offset, batch in enumerate(users)]
    index_thread = _in_thread(indexer)
    for thread, _errors in threads:
        thread.join(timeout=120)
    done.set()
    index_thread[0].join(timeout=120)

    assert [error for _thread, errors in [*threads, index_thread] for error in errors] == []
    while tree_index_pending():
        pass
    assert len(intended) == 200
    parents = dict(Member.objects.filter(pk__in=intended).values_list("pk", "parent_id"))
    assert parents == intended
    assert tree_check().is_valid
    assert_matches_rebuild()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_move_cancels_an_index_run_holding_the_lock_instead_of_waiting(settings, staff_user):
    settings.REFERRALS_TREE_INDEX_INLINE = False
    root, other = MemberFactory(), MemberFactory()
    mover = member_join(user=UserFactory(), sponsor=root)
    tree_index_pending()
    holding = threading.Event()

    def long_index_run():
        # what tree_index_run does, made slow: marked, holding the tree lock, busy for up to 30 s
        with transaction.atomic():
            tree_lock_acquire()
            tree_index_pass_mark()
            holding.set()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(30)")

    runner, errors = _in_thread(long_index_run)
    assert holding.wait(timeout=10)
    started = time.monotonic()
    member_move(member=mover, new_sponsor=other, actor=staff_user, reason="test")
    elapsed = time.monotonic() - started
    runner.join(timeout=40)

    assert elapsed < 5
    assert len(errors) == 1 and services.is_query_cancelled(errors[0])
    assert Member.objects.get(pk=mover.pk).parent_id == other.pk
    assert tree_check().is_valid


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_move_cancels_an_index_run_caught_between_two_statements(settings, staff_user):
    """A cancel reaches only a running statement: a pass idle in its transaction when the move's first cancel
    arrives (as between two of its statements) ignored it and held the lock for its whole next statement (the
    move waited 30 s; CI caught it once). The move cancels again until it has the lock."""
    settings.REFERRALS_TREE_INDEX_INLINE = False
    root, other = MemberFactory(), MemberFactory()
    mover = member_join(user=UserFactory(), sponsor=root)
    tree_index_pending()
    holding = threading.Event()

    def index_run_pausing_between_statements():
        with transaction.atomic():
            tree_lock_acquire()
            tree_index_pass_mark()
            holding.set()
            time.sleep(0.5)  # idle in transaction: the move's first cancel arrives now
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(30)")

    runner, errors = _in_thread(index_run_pausing_between_statements)
    assert holding.wait(timeout=10)
    started = time.monotonic()
    member_move(member=mover, new_sponsor=other, actor=staff_user, reason="test")
    elapsed = time.monotonic() - started
    runner.join(timeout=40)

    assert elapsed < 5
    assert len(errors) == 1 and services.is_query_cancelled(errors[0])
    assert Member.objects.get(pk=mover.pk).parent_id == other.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_move_never_cancels_an_index_run_of_another_database_on_the_same_server(settings, staff_user):
    # given: in this database a join-like writer holds the tree lock for a moment; in another database of the server
    # an index pass holds the same advisory key (another deployment, or CI's other test database)
    import psycopg

    settings.REFERRALS_TREE_INDEX_INLINE = False
    root, other = MemberFactory(), MemberFactory()
    mover = member_join(user=UserFactory(), sponsor=root)
    tree_index_pending()
    params = connection.get_connection_params()
    foreign = psycopg.connect(
        host=params.get("host"),
        port=params.get("port"),
        user=params.get("user"),
        password=params.get("password"),
        dbname="postgres",
        application_name=INDEX_RUN_APPLICATION_NAME,
        autocommit=False,
    )
    here_holding, foreign_holding = threading.Event(), threading.Event()

    def writer_here():
        with transaction.atomic():
            tree_lock_acquire()
            here_holding.set()
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(1)")

    def pass_elsewhere():
        with foreign.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [TREE_LOCK_KEY])
            foreign_holding.set()
            cursor.execute("SELECT pg_sleep(3)")
        foreign.rollback()

    foreign_runner, foreign_errors = _in_thread(pass_elsewhere)
    here_runner, here_errors = _in_thread(writer_here)
    assert here_holding.wait(timeout=10) and foreign_holding.wait(timeout=10)

    # when: a staff move takes the lock ahead of index passes
    member_move(member=mover, new_sponsor=other, actor=staff_user, reason="test")
    here_runner.join(timeout=10)
    foreign_runner.join(timeout=10)
    foreign.close()

    # then: it waited for the writer here, and the other database's pass was left to finish
    assert here_errors == [] and foreign_errors == []
    assert Member.objects.get(pk=mover.pk).parent_id == other.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_cancelled_index_run_asks_for_another_and_changes_nothing(settings, monkeypatch):
    settings.REFERRALS_TREE_INDEX_INLINE = False
    requested = []
    monkeypatch.setattr(services, "tree_index_requested", lambda: requested.append(1))
    root = MemberFactory()
    joined = member_join(user=UserFactory(), sponsor=root)
    requested.clear()

    def cancelled(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_cancel_backend(pg_backend_pid()), pg_sleep(5)")  # as a move cancels a run

    monkeypatch.setattr(services, "tree_index_pending", cancelled)
    assert services.tree_index_run() == 0
    assert requested == [1]
    assert Member.objects.get(pk=joined.pk).lft == PENDING

    # a statement timeout has the same SQLSTATE but is no move's cancel: it fails loudly and asks for nothing
    def timed_out(**kwargs):
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL statement_timeout = 1")
            cursor.execute("SELECT pg_sleep(1)")

    monkeypatch.setattr(services, "tree_index_pending", timed_out)
    requested.clear()
    with pytest.raises(OperationalError):
        services.tree_index_run()
    assert requested == []


@pytest.mark.django_db
def test_an_invite_code_clash_is_retried_and_a_second_join_of_a_user_refused(deferred, monkeypatch):
    root = MemberFactory()
    codes = iter([root.invite_code, "NEWCODE2"])
    monkeypatch.setattr(services, "new_invite_code", lambda: next(codes))
    user = UserFactory()

    member = member_join(user=user, sponsor=root)

    assert member.invite_code == "NEWCODE2" and Member.objects.get(pk=member.pk).parent_id == root.pk
    monkeypatch.setattr(services, "new_invite_code", lambda: "NEWCODE3")
    with pytest.raises(services.ReferralError) as refused:
        member_join(user=user, sponsor=root)
    assert refused.value.code == "already_member"
    assert Member.objects.filter(user=user).count() == 1


# --- Team figures at a peak: only the team's own pending members are read ----------------------------------


def _pending_team_from_parent_links(member_id: int) -> dict[int, list[int]]:
    """The pending members below `member_id` with their relative levels, from the parent links alone."""
    rows = list(Member.objects.values_list("pk", "parent_id", "lft"))
    children: dict[int, list[int]] = {}
    for pk, parent_id, _lft in rows:
        children.setdefault(parent_id, []).append(pk)
    pending = {pk for pk, _parent, lft in rows if lft == PENDING}
    team: dict[int, list[int]] = {}
    frontier, depth = [member_id], 0
    while frontier:
        depth += 1
        frontier = [child for parent in frontier for child in children.get(parent, [])]
        for child in frontier:
            if child in pending:
                team.setdefault(depth, []).append(child)
    return {level: sorted(ids) for level, ids in team.items()}


@pytest.mark.django_db
@pytest.mark.parametrize("drive", ["from the team down", "from the pending members up"])
@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=st.lists(st.tuples(st.integers(0, 10**6), st.booleans()), min_size=1, max_size=25))
def test_pending_team_equals_the_parent_links_whichever_way_it_is_read(deferred, monkeypatch, drive, plan):
    # given: a tree where some members are placed and some pending, pending members sponsoring others too
    from referrals import selectors

    monkeypatch.setattr(selectors, "PENDING_TEAM_UP_SHARE", 0 if drive == "from the team down" else 10**9)
    try:
        with transaction.atomic():
            members = [MemberFactory()]
            for pick, place_now in plan:
                members.append(_join(members[pick % len(members)]))
                if place_now:
                    tree_index_pending(limit=1 + pick % 3)
            # then: every member's pending team is what the parent links say, at the right relative levels
            for member in Member.objects.all():
                assert member_pending_team(member) == _pending_team_from_parent_links(member.pk), member.pk
            raise _Rollback
    except _Rollback:
        pass


# --- The join as one statement (PostgreSQL) ------------------------------------------------------------------


def _event_fields(member_id: int) -> dict:
    from referrals.models import TreeEvent

    event = TreeEvent.objects.get(member_id=member_id)
    return {
        "kind": event.kind,
        "actor": event.actor_id,
        "old": event.old_parent_id,
        "new": event.new_parent_id,
        "before": event.before,
        "after": event.after,
        "reason": event.reason,
    }


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_one_statement_join_writes_what_the_transaction_writes(deferred):
    root = MemberFactory()
    sponsor = _join(root)
    tree_index_pending()
    staff = UserFactory(is_staff=True)
    by_statements = services._member_join_atomic(
        user=UserFactory(), sponsor=sponsor, source="share_link", actor=staff, use_default_sponsor=True
    )
    by_one = services._join_in_one_statement(
        user=UserFactory(), sponsor_id=sponsor.pk, source="share_link", actor=staff
    )

    columns = ("parent_id", "status", "join_source", "tree_id", "lft", "rght", "level")
    rows = {m.pk: Member.objects.values_list(*columns).get(pk=m.pk) for m in (by_statements, by_one)}
    assert rows[by_statements.pk] == rows[by_one.pk] == (sponsor.pk, "active", "share_link", 1, 0, 0, 2)
    assert _event_fields(by_statements.pk) == _event_fields(by_one.pk)
    assert _event_fields(by_one.pk)["after"] == {"parent_id": sponsor.pk, "status": "active"}
    stored = Member.objects.get(pk=by_one.pk)
    assert (by_one.invite_code, by_one.joined_at, by_one.level) == (stored.invite_code, stored.joined_at, stored.level)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_one_statement_join_under_an_inactive_or_missing_sponsor_writes_nothing(settings, monkeypatch, staff_user):
    from referrals.models import TreeEvent

    settings.REFERRALS_TREE_INDEX_INLINE = False
    requested = []
    monkeypatch.setattr(services, "tree_index_requested", lambda: requested.append(1))
    root = MemberFactory()
    suspended = MemberFactory(parent=root)
    services.member_set_status(member=suspended, status=Member.Status.SUSPENDED, actor=staff_user)
    before = (Member.objects.count(), TreeEvent.objects.filter(kind="join").count())

    for sponsor in (suspended, Member(pk=10**9)):
        with pytest.raises(services.ReferralError) as refused:
            member_join(user=UserFactory(), sponsor=sponsor)
        assert refused.value.code == "sponsor_inactive"
    assert (Member.objects.count(), TreeEvent.objects.filter(kind="join").count()) == before
    assert requested == []

    member = member_join(user=UserFactory(), sponsor=root)  # outside any transaction: committed at once
    assert requested == [1] and Member.objects.get(pk=member.pk).lft == PENDING


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_failed_one_statement_join_leaves_the_callers_transaction_usable(deferred, monkeypatch):
    from django.db import DataError

    root = MemberFactory()
    monkeypatch.setattr(services, "new_invite_code", lambda: "X" * 17)  # longer than the column: the statement fails
    with transaction.atomic():
        with pytest.raises(DataError):
            member_join(user=UserFactory(), sponsor=root)
        assert Member.objects.filter(pk=root.pk).exists()  # the savepoint was rolled back, not the transaction


# --- Rest after a long pass -----------------------------------------------------------------------------------


@pytest.mark.django_db
def test_after_a_long_pass_the_runs_rest_then_one_pass_places_everyone_who_joined_meanwhile(
    deferred, settings, monkeypatch
):
    from django.core.cache import cache

    cache.delete(services.TREE_INDEX_REST_KEY)
    settings.REFERRALS_TREE_INDEX_REST = 1000.0  # rest a thousand times as long as the pass took
    monkeypatch.setattr(services, "TREE_INDEX_REST_AFTER_SECONDS", 0.0)  # every pass counts as long here
    requested = []
    monkeypatch.setattr(services, "tree_index_requested", lambda: requested.append(1))
    root = MemberFactory()
    first = _join(root)

    # given: a pass placed the first member, and then others joined
    assert services.tree_index_run() == 1
    cache.set(services.TREE_INDEX_SCHEDULED_KEY, 1)  # a join asked for a run
    later = [_join(root), _join(first)]

    # when: a run comes during the rest, it places nobody and leaves the "asked for" flag, so joins send no more
    assert services.tree_index_run() == 0
    assert set(Member.objects.filter(lft=PENDING).values_list("pk", flat=True)) == {m.pk for m in later}
    assert cache.get(services.TREE_INDEX_SCHEDULED_KEY) == 1

    # then: the first run after the rest places them all, in one pass
    cache.delete(services.TREE_INDEX_REST_KEY)  # the rest is over
    assert services.tree_index_run() == 2
    assert not Member.objects.filter(lft=PENDING).exists() and tree_check().is_valid
    assert cache.get(services.TREE_INDEX_SCHEDULED_KEY) is None


@pytest.mark.django_db
def test_short_passes_and_a_rest_of_zero_never_make_a_run_wait(deferred, settings, monkeypatch):
    from django.core.cache import cache

    cache.delete(services.TREE_INDEX_REST_KEY)
    root = MemberFactory()
    _join(root)
    assert services.tree_index_run() == 1  # milliseconds: under TREE_INDEX_REST_AFTER_SECONDS
    _join(root)
    assert services.tree_index_run() == 1

    settings.REFERRALS_TREE_INDEX_REST = 0.0
    monkeypatch.setattr(services, "TREE_INDEX_REST_AFTER_SECONDS", 0.0)
    _join(root)
    assert services.tree_index_run() == 1
    _join(root)
    assert services.tree_index_run() == 1
    assert cache.get(services.TREE_INDEX_REST_KEY) is None


@pytest.mark.django_db
def test_a_member_placed_between_the_team_pages_two_reads_is_counted_once(deferred):
    # given: root > a > b > c > d placed; x joins under a (level 2 below root) and y under d (level 5 below root)
    root = MemberFactory()
    chain = [root]
    for _ in range(4):
        chain.append(_join(chain[-1]))
    tree_index_pending()
    root = Member.objects.get(pk=root.pk)
    x, y = _join(chain[1]), _join(chain[4])
    pending = member_pending_team(root)  # the team page's first read
    assert pending == {2: [x.pk], 5: [y.pk]}

    # when: a pass places both before the page's second read
    tree_index_pending()

    # then: the level counts count each once, the deeper one included in the team size
    assert member_team_level_counts(root, 3, pending=pending) == {1: 1, 2: 2, 3: 1}
    assert member_team_level_counts(Member.objects.get(pk=root.pk), 5) == {1: 1, 2: 2, 3: 1, 4: 1, 5: 1}
