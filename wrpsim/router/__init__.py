"""Routers: the Router contract and what it sees (FleetView, InstanceView, RequestView), load
balancers, cache-aware and model/pool-selecting policies.

The names below are imported from their submodules on first use (PEP 562), so a run loads only
the routers it uses (`_target_: wrpsim.router.RoundRobin` and `from wrpsim.router import X` work
as before)."""

from wrpsim.lazy import lazy_names

_WHERE = {  # public name -> the submodule defining it
    "PrefixAware": "affinity",
    "SessionAffinity": "affinity",
    "BanditRouter": "bandit",
    "Placement": "base",
    "Router": "base",
    "CascadeRouter": "cascade",
    "CompressAndRoute": "context",
    "TokenBudgetRouter": "context",
    "ROUTING_SCHEMA": "decisions",
    "routing_table": "decisions",
    "DowngradeRouter": "downgrade",
    "EnergyAwareRouter": "fleetaware",
    "SloAwareRouter": "fleetaware",
    "GuardedRouter": "guard",
    "OutputLengthAware": "lengths",
    "Answer": "multicall",
    "ChainRouter": "multicall",
    "EnsembleRouter": "multicall",
    "LeastKV": "policies",
    "LeastOutstanding": "policies",
    "PowerOfD": "policies",
    "Random": "policies",
    "RoundRobin": "policies",
    "RequestView": "requestview",
    "OracleRouter": "routerbench",
    "ZeroRouter": "routerbench",
    "RoundRouter": "rounds",
    "RuleRouter": "rules",
    "ModelRouter": "selection",
    "ThresholdRouter": "threshold",
    "UtilityRouter": "utility",
    "FleetView": "view",
    "InstanceView": "view",
}

__all__ = [
    "ROUTING_SCHEMA", "Answer", "BanditRouter", "CascadeRouter", "ChainRouter", "CompressAndRoute",
    "DowngradeRouter", "EnergyAwareRouter", "EnsembleRouter", "FleetView", "GuardedRouter",
    "InstanceView", "LeastKV", "LeastOutstanding", "ModelRouter", "OracleRouter",
    "OutputLengthAware",
    "Placement", "PowerOfD", "PrefixAware", "Random", "RequestView", "RoundRobin",
    "RoundRouter", "Router", "RuleRouter", "SessionAffinity",
    "SloAwareRouter", "ThresholdRouter", "TokenBudgetRouter", "UtilityRouter", "ZeroRouter",
    "routing_table",
]


__getattr__, __dir__ = lazy_names(__name__, _WHERE)
