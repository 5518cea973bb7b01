"""The owner reads agents' output in bounded slices: a tick's work does not grow with it.

A console runs the engine on its own event loop, so a tick that read everything an agent
wrote (1 MB per agent per tick before) stalled the screen. Real agent processes (the fake
`claude`) and real SQLite; what is checked is what each tick read and the summary the
store ends up with, never a time.
"""

from __future__ import annotations

from pathlib import Path

from engine_helpers import agent_env, make_config, wait_for_state

from claudine_core.agents.stream_parse import parse_lines
from claudine_core.agents.summary import StreamSummary
from claudine_core.engine import Engine
from claudine_core.finishing import TICK_READ_BYTES
from claudine_core.models import TaskSpec, TaskState
from claudine_core.supervisor import RunningAgent

DONE = (TaskState.COMPLETED, TaskState.FAILED, TaskState.CANCELLED)


async def test_a_flood_larger_than_a_slice_is_summarised_fully_over_several_ticks(
        tmp_path: Path) -> None:
    async with Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.05) as eng:
        read_per_follow: list[int] = []
        follow = eng.finisher.follow

        def recording_follow(agent: RunningAgent, now: float) -> None:
            before = agent.offset
            follow(agent, now)
            read_per_follow.append(agent.offset - before)

        eng.finisher.follow = recording_follow  # type: ignore[method-assign]
        prompt = "[text:starting][flood:4][tool:Read][text:the end of it]"
        task = eng.service.delegate(TaskSpec(prompt, cwd=str(tmp_path)))
        done = await wait_for_state(eng, task.id, DONE, timeout=120)
        stdout = eng.service.output_path(task.id)
        assert stdout is not None
        data = stdout.read_bytes()

    assert done.status is TaskState.COMPLETED, done.error
    assert len(data) > 3 * TICK_READ_BYTES
    # No tick read more than its slice plus, once the agent ended, the rest's budget.
    assert max(read_per_follow) <= 2 * TICK_READ_BYTES
    assert sum(1 for size in read_per_follow if size) >= 2
    # Yet everything was read and summarised, as a parse of the whole file says.
    whole = StreamSummary()
    whole.update_all(parse_lines(data.splitlines()))
    assert done.output_bytes == len(data)
    assert whole.result is not None
    assert (done.num_turns, done.result, done.session_id, done.last_activity) == (
        whole.num_turns, whole.result.result, whole.session_id, whole.last_activity)


async def test_flooding_agents_share_one_ticks_read_budget_and_are_summarised_fully(
        tmp_path: Path) -> None:
    async with Engine(make_config(tmp_path / "home"), env=agent_env(), tick_s=0.05) as eng:
        read_per_tick = [0]
        next_tick, follow = eng.finisher.next_tick, eng.finisher.follow

        def recording_next_tick(agents: list[RunningAgent]) -> None:
            read_per_tick.append(0)
            next_tick(agents)

        def recording_follow(agent: RunningAgent, now: float) -> None:
            before = agent.offset
            follow(agent, now)
            read_per_tick[-1] += agent.offset - before

        eng.finisher.next_tick = recording_next_tick  # type: ignore[method-assign]
        eng.finisher.follow = recording_follow  # type: ignore[method-assign]
        tasks = [eng.service.delegate(TaskSpec(f"[text:agent {n}][flood:2][text:done {n}]",
                                               cwd=str(tmp_path)))
                 for n in range(4)]
        done = [await wait_for_state(eng, task.id, DONE, timeout=120) for task in tasks]
        outputs = [eng.service.output_path(task.id) for task in tasks]

    # A tick reads at most the shared budget, plus the rest of the agents that ended in it.
    assert max(read_per_tick) <= 2 * TICK_READ_BYTES
    assert sum(read_per_tick) == sum(task.output_bytes for task in done)
    for task, output in zip(done, outputs, strict=True):
        assert task.status is TaskState.COMPLETED, task.error
        assert output is not None
        whole = StreamSummary()
        whole.update_all(parse_lines(output.read_bytes().splitlines()))
        assert whole.result is not None
        assert (task.num_turns, task.result, task.last_activity) == (
            whole.num_turns, whole.result.result, whole.last_activity)
