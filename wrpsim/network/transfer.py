"""The transfer API the pools use: KV-cache transfers and collective traffic over the fabric.

    fabric = build_fabric(cfg["network"], seed)     # kind none | fluid | packet
    fabric.attach(env)
    gpus = fabric.place([("prefill", 4, 8), ("decode", 4, 8)])
    fabric.transfer(gpus["prefill", 0], gpus["decode", 2], nbytes, done=lambda t: ...)

A transfer of `n = len(src_gpus)` flows starts them together at `env.now` (flow i from
`src_gpus[i]` to `dst_gpus[i]`, `nbytes // n` bytes each, the remainder on the first) and calls
`done(env.now)` once, when the last byte of the last flow has arrived. Flows between two GPUs of
one server use the server's scale-up link (`nvlink_gbps`: bytes / rate, no contention; instant
when null; a PCIe server's GPUs their own link instead, `set_server_link`); a flow from a GPU to
itself, a zero-byte transfer and every transfer under `kind: none` complete at once (through a
zero-delay event, never re-entrantly). Other flows cross the leaf-spine fabric as connections of
the configured load-balancing mode.

Engines under SimPy: `wrpsim.network.drivers` (the fluid engine's recomputations and the
packet engine's picosecond queue, advanced by SimPy's clock).

Packet window (`packet_window: [t0, t1]`, kind fluid only). A transfer that *starts* at a time t
with t0 <= t < t1 runs on a packet engine of its own, every other one on the fluid engine; a
transfer keeps its engine to the end, so one started inside the window finishes as packets even
after t1 and one started before t0 finishes as a fluid. The two engines share the topology and
the path choices (one `LoadBalancer`) and see each other's traffic (`crosstraffic.py`): a
running window connection is a phantom taking its max-min share in the fluid engine, and the
fluid rate through a port is background load that slows that port for the packet engine.
Per-port bytes are the sum of both engines; the packet counters (`stats`) are the window
engine's. A window covering the whole run is `kind: packet`, one no transfer starts in is
`kind: fluid`, result for result.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Callable
from functools import partial
from itertools import repeat

import simpy

from wrpsim.errors import ConfigError, warn
from wrpsim.metrics.summary import pct
from wrpsim.network import FLEET_KEYS
from wrpsim.network.config import NetConfig, unread_lb_key
from wrpsim.network.crosstraffic import CrossTraffic
from wrpsim.network.drivers import FluidDriver, PacketDriver
from wrpsim.network.flowlog import NAN, FlowLog, nans
from wrpsim.network.fluid import FluidEngine
from wrpsim.network.packet import PacketEngine
from wrpsim.network.paths import LoadBalancer
from wrpsim.network.placement import place
from wrpsim.network.topology import LeafSpine
from wrpsim.pool.wakeup import wake


def build_fabric(cfg: dict | None, seed: int) -> Fabric:
    """The fabric of the main app's `network` group (a plain dict; None means `kind: none`;
    the fleet's keys `FLEET_KEYS` are not the fabric's and are left out)."""
    if cfg is not None:
        cfg = {k: v for k, v in cfg.items() if k not in FLEET_KEYS}
    net = NetConfig.from_dict(cfg)
    unread = unread_lb_key(net) if net.kind != "none" else None
    if unread:  # (a warning: a sweep over lb and subflows together runs every pair)
        warn(unread)
    return Fabric(net, seed)


_SELF, _NVLINK, _LEAF, _SPINE = range(4)  # a flow of `Fabric._plan`


class Fabric:
    """The network of one run (module docstring). Two-phase: build, then `attach(env)`."""

    def __init__(self, cfg: NetConfig, seed: int):
        self.cfg = cfg
        self.kind = cfg.kind
        self.seed = seed
        self.topo = LeafSpine(cfg) if cfg.kind != "none" else None
        self.lb = LoadBalancer(self.topo, seed) if self.topo else None
        self.env: simpy.Environment | None = None
        self.engine = None
        self._driver = None
        self.window = tuple(cfg.packet_window) if cfg.packet_window is not None else None
        self.wengine: PacketEngine | None = None   # the packet window's engine
        self._wdriver = None
        self.cross: CrossTraffic | None = None   # the window's cross-engine contention
        self.window_transfers = 0
        self.log = FlowLog()                # every transfer and flow (`flowlog`)
        self.conn_log: list | None = None   # a list: every `Conn`, by engine id (standalone)
        self.bytes_moved = 0
        self.bytes_by_tag: dict[str, int] = {}
        self._plans: dict[tuple, tuple] = {}  # GPU lists -> `_plan`
        #: GPU id -> the Gb/s of its server's link where it is not `nvlink_gbps` (a GPU on a
        #: PCIe server: `set_server_link`); empty for NVLink fleets
        self._server_gbps: dict[int, float] = {}

    def set_server_link(self, gpus, gbps: float) -> None:
        """`gpus` talk to the other GPUs of their server at `gbps` Gb/s (a PCIe server's GPUs:
        their `link_gbs`), not over `nvlink_gbps`; a copy between two GPUs of one server runs at
        the slower of its two ends."""
        for g in gpus:
            self._server_gbps[g] = gbps

    def _server_rate(self, s: int, d: int) -> float | None:
        """Gb/s of a copy from GPU s to GPU d of one server (None: instantaneous)."""
        sg = self._server_gbps
        rs, rd = sg.get(s), sg.get(d)
        if rs is None and rd is None:
            return self.cfg.nvlink_gbps
        return min(r for r in (rs, rd) if r is not None)

    def attach(self, env: simpy.Environment) -> None:
        """Bind to the run's SimPy environment (once, before the first transfer)."""
        self.env = env
        if self.kind == "fluid":
            self.engine = FluidEngine(self.topo)
            self._driver = FluidDriver(self, env, self.engine)
        elif self.kind == "packet":
            self.engine = PacketEngine(self.topo, self.seed)
            self._driver = PacketDriver(self, env, self.engine)
        if self.window is not None:
            self.wengine = PacketEngine(self.topo, self.seed)
            self._wdriver = PacketDriver(self, env, self.wengine)
            self.cross = CrossTraffic(self._driver, self.wengine)
            self._wdriver.on_done = self.cross.finished

    def place(self, pools: list[tuple[str, int, int]]) -> dict[tuple[str, int], list[int]]:
        """GPU ids of every (pool, instance); `placement` pack | spread; ConfigError when the
        fabric has too few GPUs. Under `kind: none` GPUs are numbered consecutively, unbounded."""
        if self.topo is None:
            out, nxt = {}, 0
            for name, count, g in pools:
                for i in range(count):
                    out[(name, i)] = list(range(nxt, nxt + g))
                    nxt += g
            return out
        return place(self.topo, pools, self.cfg.placement)

    def transfer(self, src_gpus: list[int], dst_gpus: list[int], nbytes: int,
                 done: Callable[[float], None], tag: str = "", key=None) -> int:
        """Move `nbytes` from `src_gpus` to `dst_gpus` (module docstring); `done(t)` at the end.
        Returns the transfer's id (`flow_ids`). `key`: `LoadBalancer.connections`' key (the
        steps of one collective keep their queue pairs)."""
        env = self.env
        if env is None:
            raise RuntimeError("Fabric.transfer before Fabric.attach(env)")
        n = len(src_gpus)
        plan = self._plans.get((*src_gpus, *dst_gpus)) if n == len(dst_gpus) else None
        if plan is not None and nbytes >= 0 and self.conn_log is None:
            # a pair of GPU lists checked before, on the fast path (`_fluid_transfer`)
            self.bytes_moved += nbytes
            tags = self.bytes_by_tag
            tags[tag] = tags.get(tag, 0) + nbytes
            return self._fluid_transfer(src_gpus, dst_gpus, nbytes, done, key, n, plan)
        if n == 0 or n != len(dst_gpus):
            raise ValueError(f"transfer needs equal, non-empty GPU lists, got {n} and "
                             f"{len(dst_gpus)}")
        if nbytes < 0:
            raise ValueError(f"transfer bytes must be >= 0, got {nbytes}")
        if self.topo is not None and not (
                0 <= min(src_gpus) and 0 <= min(dst_gpus)
                and max(src_gpus) < self.topo.n and max(dst_gpus) < self.topo.n):
            bad = [g for g in (*src_gpus, *dst_gpus) if not 0 <= g < self.topo.n]
            if bad:
                raise ConfigError(f"network: GPU id {bad[0]} outside the fabric's "
                                  f"0..{self.topo.n - 1}")
        self.bytes_moved += nbytes
        self.bytes_by_tag[tag] = self.bytes_by_tag.get(tag, 0) + nbytes
        if (self.kind == "fluid" and self.window is None and self.conn_log is None
                and self.cfg.lb == "ecmp"):
            return self._fluid_transfer(src_gpus, dst_gpus, nbytes, done, key, n,
                                        self._plans.get((*src_gpus, *dst_gpus)))
        log = self.log
        now = env.now
        x = log.new_transfer(now)
        sizes = [nbytes // n + (nbytes % n if i == 0 else 0) for i in range(n)]
        net_flows = []
        left = 0
        for s, d, b in zip(src_gpus, dst_gpus, sizes):
            fid = log.new_flow(s, d, b)
            if self.topo is None or b == 0 or s == d:
                log.f_end[fid] = now
                continue
            left += 1
            if self.topo.server_of[s] == self.topo.server_of[d]:
                rate = self._server_rate(s, d) if self._server_gbps else self.cfg.nvlink_gbps
                log.flow_parts(fid, x, 1)
                self._later(0.0 if rate is None else b * 8 / (rate * 1e9), fid)
            else:
                net_flows.append((fid, s, d, b))
        if net_flows:
            conns = self.lb.connections([(s, d, b) for _, s, d, b in net_flows], key)
            driver = self._driver_for(now, conns)
            cf = driver.conn_flow
            first = len(cf)
            for c in conns:
                fid = net_flows[c.flow][0]
                log.flow_parts(fid, x, 1)
                cf.append(fid)
            driver.conn_x.extend(repeat(-1, len(conns)))
            if driver is self._wdriver:  # the fluid engine makes room before packets leave
                driver.add(conns, before=partial(self.cross.started, first, conns))
            else:
                driver.add(conns)
        if left == 0:  # nothing to wait for: done at this instant, but not re-entrantly
            log.x_end[x] = now
            wake(env, 0, lambda _e: done(env.now))
        else:
            log.wait(x, left, done)
        return x

    def route(self, src_gpus: list[int], dst_gpus: list[int]) -> tuple | None:
        """The plan `transfer` keeps for this pair of GPU lists once it has moved bytes on
        them on the fast path (a fluid fabric with ECMP, no packet window, no `conn_log`), for
        `transfer_on`; None before that, or off the fast path. A caller that sends on the same
        pair again (a KV hand-off between two instances) may keep it for the run."""
        if self.conn_log is not None or len(src_gpus) != len(dst_gpus):
            return None
        return self._plans.get((*src_gpus, *dst_gpus))

    def transfer_on(self, plan: tuple, nbytes: int, done: Callable[[float], None],
                    tag: str = "") -> int:
        """`transfer(src_gpus, dst_gpus, nbytes, done, tag)` for the pair of GPU lists whose
        `route` is `plan`: the same records, connections, events and id, without looking the
        pair up again."""
        if nbytes < 0 or self.conn_log is not None:  # (`transfer` raises or logs `Conn`s)
            return self.transfer(plan[0].tolist(), plan[1].tolist(), nbytes, done, tag)
        self.bytes_moved += nbytes
        tags = self.bytes_by_tag
        tags[tag] = tags.get(tag, 0) + nbytes
        return self._fluid_transfer(None, None, nbytes, done, None, len(plan[0]), plan)

    def _fluid_transfer(self, src_gpus: list[int], dst_gpus: list[int], nbytes: int,
                        done: Callable[[float], None], key, n: int, plan: tuple | None) -> int:
        """`transfer`'s records, connections, engine state and events for a fluid fabric with
        ECMP and no packet window or `conn_log` (a fleet's usual case), without building a
        `Conn` per connection: the flows' records in bulk, each connection's one path straight
        into the engine (`FluidEngine.add_path`), the same qp numbers, hashes and order."""
        env = self.env
        now = env._now
        log = self.log
        x = len(log.x_start)
        log.x_start.append(now)
        log.x_end.append(NAN)
        fid0 = len(log.f_end)
        log.x_first.append(fid0)
        q, r = divmod(nbytes, n)
        if plan is None:
            plan = self._plan(src_gpus, dst_gpus)
        log.f_src.extend(plan[0])
        log.f_dst.extend(plan[1])
        f_end = log.f_end
        sizes = [q] * n  # (the flows' bytes; the engine keeps the list: not changed after)
        if r:
            sizes[0] = q + r
        log.f_bytes.extend(sizes)
        f_end.extend(plan[3])
        lb = self.lb
        if plan[4] is not None and q:  # every flow within one leaf: its planned path
            lb.next_qp += n  # (`LoadBalancer.connections`: a fresh qp per flow)
            lb.calls += 1
            drv = self._driver
            drv.catch_up()
            drv.conn_flow.extend(range(fid0, fid0 + n))
            drv.conn_x.extend([x] * n)  # one connection per flow: no `f_live`
            drv.arm_soon(drv.engine.add_group(plan[4], sizes))
            log.x_live[x] = [n, done]
            return x
        f_live = log.f_live
        left = 0
        paths = None
        b = q + r
        for i, kind, s, d, path in plan[2]:
            if i:
                b = q
            fid = fid0 + i
            if kind == _SELF or b == 0:
                f_end[fid] = now
                continue
            left += 1
            if kind == _NVLINK:
                rate = self._server_rate(s, d) if self._server_gbps else self.cfg.nvlink_gbps
                f_live[fid] = x  # (`FlowLog.flow_parts(fid, x, 1)`)
                self._later(0.0 if rate is None else b * 8 / (rate * 1e9), fid)
                continue
            if kind == _LEAF:  # (`LoadBalancer.connections`: a fresh qp, one path)
                lb.next_qp += 1
            else:
                path = self.topo.path(s, d, lb.ecmp_spine(s, d, lb._qp_of(key, s, d, 0)))
            if paths is None:
                paths, sizes, fids = [path], [b], [fid]
            else:
                paths.append(path)
                sizes.append(b)
                fids.append(fid)
        if paths is not None:  # (one `LoadBalancer.connections` call)
            lb.calls += 1
            drv = self._driver
            drv.catch_up()
            drv.conn_flow.extend(fids)
            drv.conn_x.extend([x] * len(fids))  # one connection per flow: no `f_live`
            drv.engine.add_paths(paths, sizes)
            drv.arm_soon()
        if left == 0:  # nothing to wait for: done at this instant, but not re-entrantly
            log.x_end[x] = now
            wake(env, 0, lambda _e: done(env.now))
        else:
            log.x_live[x] = [left, done]
        return x

    def _plan(self, src_gpus: list[int], dst_gpus: list[int]) -> tuple:
        """What `_fluid_transfer` needs of a pair of GPU lists, whatever the bytes: their
        arrays for the flow records, per flow (index, kind, src, dst, path) — kind
        `_SELF` (src == dst), `_NVLINK` (one server), `_LEAF` (one leaf: its one path) or
        `_SPINE` (the path depends on the ECMP hash of each transfer's qp) —, their NaN
        finish times (`flowlog.nans`) and, when every flow is `_LEAF` (a fleet's KV transfers
        between the servers of one leaf), the engine's `FluidEngine.group` of their paths in
        flow order (else None). Kept per pair
        (keyed by the lists' items, whose lengths are equal): a pair found there has been
        checked by `transfer` and is on the fast path."""
        topo = self.topo
        server, leaf, N = topo.server_of, topo.leaf_of, topo.n
        flows = []
        leaf_paths = []
        for i, (s, d) in enumerate(zip(src_gpus, dst_gpus)):
            if s == d:
                flows.append((i, _SELF, s, d, None))
            elif server[s] == server[d]:
                flows.append((i, _NVLINK, s, d, None))
            elif leaf[s] == leaf[d]:
                flows.append((i, _LEAF, s, d, (s, N + d)))
                leaf_paths.append((s, N + d))
            else:
                flows.append((i, _SPINE, s, d, None))
        if len(self._plans) >= 4096:  # (a fleet has few pairs; anything else: bounded)
            self._plans.clear()
        plan = self._plans[(*src_gpus, *dst_gpus)] = (
            array("i", src_gpus), array("i", dst_gpus), tuple(flows), nans(len(flows)),
            self.engine.group(leaf_paths) if len(leaf_paths) == len(flows) else None)
        return plan

    def _driver_for(self, now: float, conns: list):
        """The engine driver that carries connections `conns` starting at `now`: the packet
        window's (counted in `window_transfers`) inside `network.packet_window`, else the fluid
        one (the connections then logged in `conn_log` when it is kept)."""
        if self.window is not None and self.window[0] <= now < self.window[1]:
            self.window_transfers += 1
            return self._wdriver
        if self.conn_log is not None:
            self.conn_log += conns
        return self._driver

    def send(self, src: int, dst: int, nbytes: int, done: Callable[[float], None],
             tag: str = "", key=None) -> int:
        """`transfer([src], [dst], nbytes, done, tag, key)` — one flow — with the same records,
        connections, events and id, in fewer steps (a collective's flows are all of this kind);
        `src` and `dst` must be GPUs of the fabric and `nbytes >= 0` (not checked)."""
        env = self.env
        log = self.log
        now = env._now
        x, fid = log.new_single(now, src, dst, nbytes)
        self.bytes_moved += nbytes
        tags = self.bytes_by_tag
        tags[tag] = tags.get(tag, 0) + nbytes
        topo = self.topo
        if topo is None or nbytes == 0 or src == dst:
            log.f_end[fid] = now
            log.x_end[x] = now
            wake(env, 0, lambda _e: done(env.now))
            return x
        if topo.server_of[src] == topo.server_of[dst]:
            rate = (self._server_rate(src, dst) if self._server_gbps
                    else self.cfg.nvlink_gbps)
            log.flow_parts(fid, x, 1)
            self._later(0.0 if rate is None else nbytes * 8 / (rate * 1e9), fid)
            log.wait(x, 1, done)
            return x
        conns = self.lb.connection(src, dst, nbytes, key)
        driver = self._driver_for(now, conns)
        cf = driver.conn_flow
        first = len(cf)
        log.flow_parts(fid, x, len(conns))
        if len(conns) == 1:
            cf.append(fid)
            driver.conn_x.append(-1)
        else:
            cf.extend([fid] * len(conns))
            driver.conn_x.extend(repeat(-1, len(conns)))
        if driver is self._wdriver:  # the fluid engine makes room before packets leave
            driver.add(conns, before=partial(self.cross.started, first, conns))
        else:
            driver.add(conns)
        log.wait(x, 1, done)
        return x

    def flow_ids(self, x: int) -> range:
        """Ids of the flows of transfer `x` (`flow`)."""
        return self.log.flow_ids(x)

    def flow(self, fid: int) -> tuple[int, int, int, float, float]:
        """(src GPU, dst GPU, bytes, start time, arrival time) of flow `fid` (arrival NaN while
        it runs)."""
        return self.log.flow(fid)

    def transfer_times(self, t0: float = 0.0, t1: float = math.inf) -> list[float]:
        """Completion times (finish - start, s) of the finished transfers that started in
        [t0, t1), in start order (e.g. a packet window's, or the same span of a fluid run)."""
        return [e - s for s, e in zip(*self.log.transfer_spans()) if t0 <= s < t1]

    def flow_conns(self) -> dict[int, list[int]]:
        """Engine connection ids of every flow that crossed the fabric, by flow id (the main
        engine's; a packet window's flows are left out)."""
        out: dict[int, list[int]] = {}
        for cid, fid in enumerate(self._driver.conn_flow if self._driver else ()):
            out.setdefault(fid, []).append(cid)
        return out

    def _later(self, delay: float, fid: int) -> None:
        wake(self.env, delay, lambda _e, f=fid: self._flow_part_done(f))

    def _conns_done(self, cids: list[int], conn_flow: list[int]) -> None:
        for c in cids:
            self._flow_part_done(conn_flow[c])

    def _flow_part_done(self, fid: int) -> None:
        now = self.env._now
        done = self.log.flow_part_done(fid, now)
        if done is not None:  # the transfer's live state (and `done`'s closure) is gone
            done(now)

    def stats(self) -> dict:
        """Bytes moved (in total and per transfer tag), transfers, flows, mean / p50 / p99 / max
        flow completion time and p50 / p99 transfer completion time (a transfer: all flows of
        one KV move or one collective step; s), max link utilisation over the busy span (first
        transfer start to last completion), and the packet engine's counters."""
        log = self.log
        fcts = log.flow_fcts()
        starts, ends = log.transfer_spans()
        tcts = [e - s for s, e in zip(starts, ends)]
        out = {
            "kind": self.kind, "bytes_moved": self.bytes_moved,
            "bytes_by_tag": dict(sorted(self.bytes_by_tag.items())),
            "transfers": log.ntransfers, "flows": log.nflows, "flows_completed": len(fcts),
            "mean_fct_s": sum(fcts) / len(fcts) if fcts else 0.0,
            "p50_fct_s": pct(fcts, 50) or 0.0, "p99_fct_s": pct(fcts, 99) or 0.0,
            "max_fct_s": max(fcts, default=0.0),
            "p50_transfer_s": pct(tcts, 50) or 0.0, "p99_transfer_s": pct(tcts, 99) or 0.0,
            "max_link_utilization": 0.0,
        }
        if self.engine is None:
            return out
        span = max(ends, default=0.0) - min(log.x_start, default=0.0)
        if isinstance(self.engine, PacketEngine):
            out.update(self.engine.stats())
        if self.wengine is not None:
            t0, t1 = self.window  # (JSON has no infinity: an open end is null)
            out["packet_window"] = [t0, t1 if math.isfinite(t1) else None]
            out["window_transfers"] = self.window_transfers
            out.update(self.wengine.stats())
        carried = self._carried()
        if span > 0:
            out["max_link_utilization"] = float(max(
                8 * b / (r * span) for b, r in zip(carried, self.topo.rate)))
        return out


    def _carried(self) -> list:
        """Bytes each port of the topology has carried (the engine's own counter; with a packet
        window, the sum of both engines')."""
        if isinstance(self.engine, PacketEngine):
            return self.engine.pbytes
        if self.wengine is not None:
            return [f + p for f, p in zip(self.engine.port_bytes.tolist(), self.wengine.pbytes)]
        return self.engine.port_bytes

    def link_table(self, duration_s: float):
        """The per-port table of a fleet run (`network.parquet`, `records.LINK_SCHEMA`): bytes
        carried and utilisation = bytes x 8 / (rate x the run's duration) of every port, with
        the engine's per-port counters; `offered_bytes` is null (a fleet's transfers have no
        fixed offered load). None without an engine."""
        if self.engine is None:
            return None
        from wrpsim.network.records import LINK_SCHEMA, to_table
        from wrpsim.network.scenario import port_rows

        carried = list(self._carried())  # (a packet engine derives its bytes when read)
        rows = port_rows(self.topo, self.engine, carried, [None] * self.topo.nports, duration_s)
        if self.wengine is not None:  # both engines' counters: fluid's max_conns, packet's rest
            w = port_rows(self.topo, self.wengine, carried, [None] * self.topo.nports,
                          duration_s)
            rows = [r[:9] + x[9:] for r, x in zip(rows, w)]
        return to_table(rows, LINK_SCHEMA)

    def figures(self, duration_s: float) -> dict:
        """The network figures of a fleet run (`network.json`): `stats()`, the bytes of each
        traffic class under `bytes_by_class` (`kv`: KV-cache transfers, `collective`: the
        inter-server collectives of spanning instances; 0 when absent), and the mean and max
        utilisation of the links of each tier (`host_up`, `leaf_down`, `leaf_up`,
        `spine_down`: bytes carried x 8 / (rate x the run's duration)) under
        `link_utilization`; `down_ports` and `degraded_ports`, the ports of `failed_links`
        that are down or run at a reduced rate (0 without a fabric)."""
        out = self.stats()
        tags = out["bytes_by_tag"]
        out["bytes_by_class"] = {c: tags.get(c, 0) for c in ("kv", "collective")}
        topo = self.topo
        out["down_ports"] = len(topo.down_ports) if topo is not None else 0
        out["degraded_ports"] = len(topo.degraded) if topo is not None else 0
        if self.engine is None or duration_s <= 0:
            return out
        tiers: dict[str, list[float]] = {}
        for b, r, k in zip(self._carried(), self.topo.rate, self.topo.kind):
            tiers.setdefault(k, []).append(8 * b / (r * duration_s))
        out["link_utilization"] = {k: {"mean": sum(u) / len(u), "max": max(u)}
                                   for k, u in tiers.items()}
        return out
