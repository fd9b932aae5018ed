"""The asyncssh fan-out's seats: ``--workers`` sessions in flight, and spare places for the
sessions that only wait for an SSH banner (no SSH here: the bookkeeping alone)."""

from __future__ import annotations

import asyncio

from collector.ssh.async_transport import _Seats


def test_a_session_that_steps_aside_gives_its_seat_to_the_next_device() -> None:
    async def scenario() -> None:
        seats = _Seats(1, spare=1)
        silent = await seats.take()
        waiting = asyncio.ensure_future(seats.take())
        await asyncio.sleep(0)
        assert not waiting.done()  # one seat, taken
        assert silent.step_aside()
        answering = await asyncio.wait_for(waiting, 1)  # the next device starts
        assert seats.spare == 0
        # The silent device's banner comes after all: it waits for a seat again.
        back = asyncio.ensure_future(silent.step_back())
        await asyncio.sleep(0)
        assert not back.done()
        answering.leave()
        await asyncio.wait_for(back, 1)
        assert (silent.state, seats.spare) == ("seated", 1)
        silent.leave()
        again = await asyncio.wait_for(seats.take(), 1)  # every seat free again
        again.leave()

    asyncio.run(scenario())


def test_no_spare_place_keeps_the_seat() -> None:
    async def scenario() -> None:
        seats = _Seats(1, spare=0)
        silent = await seats.take()
        assert not silent.step_aside()
        assert silent.state == "seated"
        waiting = asyncio.ensure_future(seats.take())
        await asyncio.sleep(0)
        assert not waiting.done()
        silent.leave()
        (await asyncio.wait_for(waiting, 1)).leave()

    asyncio.run(scenario())


def test_leaving_from_aside_frees_the_spare_place_once() -> None:
    async def scenario() -> None:
        seats = _Seats(2, spare=1)
        first, second = await seats.take(), await seats.take()
        assert first.step_aside()
        assert first.step_aside()  # aside already: still aside, nothing counted twice
        assert not second.step_aside()  # the one spare place is taken
        first.leave()
        first.leave()  # a second leave changes nothing
        assert seats.spare == 1
        second.leave()
        third, fourth = await seats.take(), await seats.take()
        third_seat = asyncio.ensure_future(seats.take())
        await asyncio.sleep(0)
        assert not third_seat.done()  # width 2: no third seat
        third_seat.cancel()
        third.leave()
        fourth.leave()

    asyncio.run(scenario())
