"""Combos: one sender's run of one gift, continued within the window, ended after it."""

from __future__ import annotations

from server.core.streaks import Streak, StreakBook

WINDOW = 3000


def book_with_rose_at(*times_ms: int) -> tuple[StreakBook, Streak]:
    book = StreakBook(WINDOW)
    streak = None
    for now in times_ms:
        streak, _ = book.hit("rose", 1, now)
    assert streak is not None
    return book, streak


def test_first_send_opens_a_streak() -> None:
    book = StreakBook(WINDOW)
    streak, ended = book.hit("rose", 1, 1_000)
    assert ended is None
    assert (streak.gift, streak.count, streak.last_ms) == ("rose", 1, 1_000)
    assert streak.id


def test_sends_within_the_window_accumulate() -> None:
    book = StreakBook(WINDOW)
    first, _ = book.hit("rose", 1, 0)
    for step in range(1, 37):
        streak, ended = book.hit("rose", 1, step * (WINDOW - 1))
        assert ended is None
        assert streak.id == first.id
    assert streak.count == 37
    assert streak.last_ms == 36 * (WINDOW - 1)


def test_batch_counts_add_up() -> None:
    book = StreakBook(WINDOW)
    book.hit("rose", 10, 0)
    book.hit("rose", 99, 500)
    streak, ended = book.hit("rose", 1, 900)
    assert ended is None
    assert streak.count == 110


def test_a_send_exactly_at_the_window_continues() -> None:
    book, first = book_with_rose_at(0)
    streak, ended = book.hit("rose", 1, WINDOW)
    assert ended is None
    assert streak.id == first.id
    assert streak.count == 2


def test_a_send_after_the_window_starts_a_new_streak() -> None:
    book, first = book_with_rose_at(0, 1_000, 2_000)
    streak, ended = book.hit("rose", 5, 2_000 + WINDOW + 1)
    assert ended is not None
    assert ended.id == first.id
    assert ended.count == 3
    assert ended.last_ms == 2_000
    assert streak.id != first.id
    assert streak.count == 5
    assert streak.last_ms == 2_000 + WINDOW + 1


def test_the_new_streak_continues_on_its_own() -> None:
    book, first = book_with_rose_at(0)
    second, _ = book.hit("rose", 1, WINDOW + 1)
    third, ended = book.hit("rose", 1, WINDOW + 2)
    assert ended is None
    assert third.id == second.id != first.id
    assert third.count == 2


def test_different_gifts_have_separate_streaks() -> None:
    book = StreakBook(WINDOW)
    rose, _ = book.hit("rose", 1, 0)
    heart, ended = book.hit("finger_heart", 2, 100)
    assert ended is None
    assert heart.id != rose.id
    rose_again, _ = book.hit("rose", 1, 200)
    heart_again, _ = book.hit("finger_heart", 3, 300)
    assert (rose_again.id, rose_again.count) == (rose.id, 2)
    assert (heart_again.id, heart_again.count) == (heart.id, 5)


def test_one_gift_lapsing_leaves_the_other_alone() -> None:
    book = StreakBook(WINDOW)
    rose, _ = book.hit("rose", 1, 0)
    book.hit("doughnut", 1, WINDOW)
    _, ended = book.hit("doughnut", 1, WINDOW + 10)
    assert ended is None
    fresh, ended = book.hit("rose", 1, WINDOW + 10)
    assert ended is not None
    assert ended.id == rose.id
    assert fresh.id != rose.id


def test_a_late_clock_reading_does_not_move_the_streak_back() -> None:
    book, streak = book_with_rose_at(5_000)
    again, ended = book.hit("rose", 1, 4_000)
    assert ended is None
    assert again.id == streak.id
    assert again.last_ms == 5_000


def test_expire_returns_only_lapsed_streaks() -> None:
    book = StreakBook(WINDOW)
    old, _ = book.hit("rose", 4, 0)
    young, _ = book.hit("finger_heart", 1, 2_000)
    lapsed = book.expire(WINDOW + 1)
    assert [s.id for s in lapsed] == [old.id]
    assert lapsed[0].count == 4
    # The young one is still open and continues.
    continued, ended = book.hit("finger_heart", 1, 2_500)
    assert ended is None
    assert continued.id == young.id


def test_expire_at_exactly_the_window_keeps_the_streak() -> None:
    book, _ = book_with_rose_at(0)
    assert book.expire(WINDOW) == []


def test_an_expired_streak_is_gone() -> None:
    book, first = book_with_rose_at(0)
    assert len(book.expire(WINDOW + 1)) == 1
    assert book.expire(10 * WINDOW) == []
    # The next send starts afresh and reports no ended streak: it was reported already.
    fresh, ended = book.hit("rose", 1, 10 * WINDOW)
    assert ended is None
    assert fresh.id != first.id
    assert fresh.count == 1


def test_expire_on_an_empty_book() -> None:
    assert StreakBook(WINDOW).expire(1_000_000) == []


def test_expire_returns_all_lapsed_at_once() -> None:
    book = StreakBook(WINDOW)
    for offset, gift in enumerate(["rose", "finger_heart", "doughnut"]):
        book.hit(gift, 1, offset)
    book.hit("hand_hearts", 1, 5_000)
    lapsed = book.expire(WINDOW + 10)
    assert sorted(s.gift for s in lapsed) == ["doughnut", "finger_heart", "rose"]
    assert book.next_deadline_ms() == 5_000 + WINDOW + 1


def test_close_all_returns_every_open_streak_and_empties_the_book() -> None:
    book = StreakBook(WINDOW)
    book.hit("rose", 2, 0)
    book.hit("doughnut", 3, 10)
    closed = book.close_all()
    assert sorted((s.gift, s.count) for s in closed) == [("doughnut", 3), ("rose", 2)]
    assert book.close_all() == []
    assert book.next_deadline_ms() is None
    assert book.expire(10**9) == []


def test_close_all_on_an_empty_book() -> None:
    assert StreakBook(WINDOW).close_all() == []


def test_next_deadline_is_none_when_empty() -> None:
    assert StreakBook(WINDOW).next_deadline_ms() is None


def test_next_deadline_is_the_earliest_lapse() -> None:
    book = StreakBook(WINDOW)
    book.hit("rose", 1, 1_000)
    book.hit("doughnut", 1, 400)
    assert book.next_deadline_ms() == 400 + WINDOW + 1
    book.hit("doughnut", 1, 2_000)
    assert book.next_deadline_ms() == 1_000 + WINDOW + 1


def test_expire_at_the_deadline_closes_the_streak() -> None:
    book, streak = book_with_rose_at(700)
    deadline = book.next_deadline_ms()
    assert deadline is not None
    assert book.expire(deadline - 1) == []
    assert [s.id for s in book.expire(deadline)] == [streak.id]
    assert book.next_deadline_ms() is None


def test_streak_ids_differ_between_books() -> None:
    ids = {StreakBook(WINDOW).hit("rose", 1, 0)[0].id for _ in range(50)}
    assert len(ids) == 50


def test_taking_back_a_send_leaves_the_streak_as_before_it() -> None:
    book, streak = book_with_rose_at(0, 100)
    again, _ = book.hit("rose", 5, 200)
    book.take_back(again, 5)
    assert (again.id, again.count) == (streak.id, 2)
    assert book.hit("rose", 1, 300)[0].count == 3


def test_taking_back_the_only_send_forgets_the_streak() -> None:
    book = StreakBook(WINDOW)
    streak, _ = book.hit("rose", 4, 0)
    book.take_back(streak, 4)
    assert book.close_all() == []
    assert book.hit("rose", 1, 10)[0].id != streak.id
