"""The runner: drives the simulation slot by slot on the clock, through the store.

Each cycle closes the running slot N and opens N+1 in one store transaction (stats of N,
asset state after N, fees of N+1), then tells every subscriber with the ``market_info`` of the
cycle (``market_slot`` = N+1, ``last_market_slot`` = N), the message a grid operator's
``on_market_cycle`` receives. On start it resumes from the store: the slot that was running when
the last process stopped is run again from the state saved after the slot before it, so no slot
is missing from the history and none is there twice.

Its command line is :mod:`app.entry.run` (``python -m app.entry.run [--slots N] [--reset]``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeAlias

from app.exchange.clock import SimClock
from app.exchange.events import market_info

if TYPE_CHECKING:  # imported where used, so that ``--help`` answers at once
    import numpy as np

    from app.exchange.grid import GridModel
    from app.exchange.scenario import Scenario
    from app.exchange.stats import SlotStats

log = logging.getLogger(__name__)

CycleHook = Callable[[dict], None]
AssetArrays: TypeAlias = "dict[str, np.ndarray]"  # AssetState.to_arrays()
BuildStats: TypeAlias = "Callable[[np.ndarray], SlotStats]"  # the stats of a slot, given the next fees


@dataclass(frozen=True)
class RunnerState:
    """What a runner resumes from: the running slot, its timing and the asset state after the
    slot before it (None: the scenario's initial state)."""

    running_slot: int
    last_closed_slot: int | None
    slot_started_at: float
    slot_seconds: float
    asset_state: AssetArrays | None


class SlotStore(Protocol):
    """Where the runner keeps its slots, state and fee book (``app.store.repo.ExchangeStore``)."""

    scenario: Scenario
    grid: GridModel
    key: str

    def load_state(self) -> RunnerState: ...

    def clock_state(self) -> RunnerState:
        """``load_state`` without the asset state."""
        ...

    def start_slot(
        self, slot: int, slot_seconds: float, asset_state: AssetArrays | None = None
    ) -> np.ndarray:
        """Mark ``slot`` as running from now; its fees, in market order."""
        ...

    def close_slot(
        self, slot: int, label: str, build_stats: BuildStats, asset_state: AssetArrays, slot_seconds: float
    ) -> tuple[SlotStats, np.ndarray]:
        """Keep ``slot``'s stats (built with the next slot's fees) and open ``slot + 1`` at once;
        returns the stats and the fees now in force."""
        ...


class ScenarioEnded(RuntimeError):
    """No slot is left to close: the scenario's ``days`` are simulated."""


class ExchangeRunner:
    def __init__(self, store: SlotStore, slot_seconds: float = 0.0):
        from app.exchange.simulation import Simulation

        self.store = store
        self.sim = Simulation(store.scenario, store.grid)
        sc = store.scenario
        self.clock = SimClock(sc.start, sc.slot_length_min, slot_seconds)
        self.hooks: list[CycleHook] = []
        self.summary_hooks: list[CycleHook] = []
        self.running_slot: int | None = None
        self.fees: np.ndarray | None = None
        self.slot_started_at = 0.0

    def subscribe(self, hook: CycleHook, markets: bool = True) -> None:
        """Call ``hook`` with each cycle's ``market_info``; ``markets=False``: with the event
        without its ``markets`` (the slots and rates only), which spares building one entry per
        market when nobody reads them (10,000 entries a slot for a 10,000-house grid)."""
        (self.hooks if markets else self.summary_hooks).append(hook)

    def resume(self) -> int:
        """Load the state after the last closed slot and (re)start the slot after it."""
        from app.exchange.assets import AssetState

        saved = self.store.load_state()
        if saved.asset_state is not None:
            self.sim.state = AssetState.from_arrays(saved.asset_state)
        self.running_slot = saved.running_slot
        self.fees = self.store.start_slot(saved.running_slot, self.clock.slot_seconds)
        self.slot_started_at = time.time()
        log.info("exchange %s: running slot %s", self.store.key, self.clock.label(saved.running_slot))
        return saved.running_slot

    @property
    def finished(self) -> bool:
        """The scenario's last slot is closed (``days`` set and reached)."""
        return self.running_slot is not None and self.store.scenario.has_ended(self.running_slot)

    def close_running_slot(self) -> dict:
        """Simulate the running slot, store it, open the next one, tell the subscribers.

        Returns the cycle's ``market_info``."""
        info = self._close(True)
        assert info is not None
        return info

    def _close(self, want_info: bool) -> dict | None:
        """``close_running_slot``; builds the ``market_info`` only if wanted or subscribed."""
        if self.running_slot is None:
            self.resume()
        if self.finished:
            raise ScenarioEnded(f"the scenario ended after {self.store.scenario.days} day(s)")
        slot, grid = self.running_slot, self.sim.grid
        before = type(self.sim.state).from_arrays(self.sim.state.to_arrays())  # an AssetState
        try:
            outcome = self.sim.run_slot(slot, self.fees)
            stats, next_fees = self.store.close_slot(
                slot,
                self.clock.label(slot),
                lambda queued: outcome.stats(grid, queued),
                self.sim.state.to_arrays(),
                self.clock.slot_seconds,
            )
        except BaseException:
            self.sim.state = before  # the store did not take the slot: neither do we
            raise
        self.running_slot, self.fees = slot + 1, next_fees
        self.slot_started_at = time.time()
        sell, feed_in = self.sim.supplier_rates(slot)
        info = None
        if want_info or self.hooks:
            info = market_info(grid, self.clock, slot, stats.rows(), sell, feed_in)
        summary = None
        if self.summary_hooks:
            summary = market_info(grid, self.clock, slot, [], sell, feed_in)
            del summary["markets"]
        for hook, event in [(h, info) for h in self.hooks] + [(h, summary) for h in self.summary_hooks]:
            try:
                hook(event)
            except Exception:  # a subscriber's bug must not stop the exchange
                log.exception("market-cycle subscriber failed")
        return info

    def run(self, max_slots: int | None = None, stop: threading.Event | None = None) -> int:
        """Close slots on the clock until ``max_slots`` closed, ``stop`` is set or the scenario
        ended (``finished``); returns the count."""
        stop = stop or threading.Event()
        if self.running_slot is None:
            self.resume()
        done = 0
        while not stop.is_set() and not self.finished and (max_slots is None or done < max_slots):
            if not self.clock.fast_forward:
                wait = self.clock.slot_end_wall(self.slot_started_at) - time.time()
                if wait > 0 and stop.wait(wait):
                    break
            self._close(False)
            done += 1
        return done


def print_cycle(info: dict, levels: tuple[int, ...] = (0, 1)) -> None:
    """Print the closed slot's stats of the grid and community markets, one line each."""

    def num(v: float | None, fmt: str = "{:7.2f}") -> str:
        return "      -" if v is None else fmt.format(v)

    print(f"slot {info['last_market_slot']} closed; {info['market_slot']} running", flush=True)
    print(
        f"  {'market':<22}{'min':>7} {'med':>7} {'avg':>7} {'max':>7}  ct/kWh {'traded':>8} "
        f"{'import':>8} {'export':>8} kWh {'self-suff':>9} % {'fee':>6} {'next':>6} ct/kWh {'revenue':>8} ct"
    )
    for m in info["markets"]:
        if m["level"] not in levels:
            continue
        s = m["last_market_stats"]
        print(
            f"  {m['name'][:21]:<22}{num(s['min_trade_rate'])} {num(s['median_trade_rate'])} "
            f"{num(s['avg_trade_rate'])} {num(s['max_trade_rate'])}         "
            f"{s['total_traded_energy_kWh']:8.2f} {m['area_throughput']['import']:8.2f} "
            f"{m['area_throughput']['export']:8.2f}     {num(m['self_sufficiency'], '{:9.1f}')}   "
            f"{m['last_market_fee']:6.2f} {s['next_market_fee']:6.2f}        {m['market_fee_revenue']:8.2f}",
            flush=True,
        )
