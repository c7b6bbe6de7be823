"""Routers: the Router contract and what it sees (FleetView, InstanceView, RequestView), load
balancers, cache-aware and model/pool-selecting policies."""

from wrpsim.router.affinity import PrefixAware, SessionAffinity
from wrpsim.router.bandit import BanditRouter
from wrpsim.router.base import Placement, Router
from wrpsim.router.cascade import CascadeRouter
from wrpsim.router.context import CompressAndRoute, TokenBudgetRouter
from wrpsim.router.decisions import ROUTING_SCHEMA, routing_table
from wrpsim.router.downgrade import DowngradeRouter
from wrpsim.router.fleetaware import EnergyAwareRouter, SloAwareRouter
from wrpsim.router.guard import GuardedRouter
from wrpsim.router.lengths import OutputLengthAware
from wrpsim.router.multicall import Answer, ChainRouter, EnsembleRouter
from wrpsim.router.policies import LeastKV, LeastOutstanding, PowerOfD, Random, RoundRobin
from wrpsim.router.requestview import RequestView
from wrpsim.router.rules import RuleRouter
from wrpsim.router.selection import ModelRouter
from wrpsim.router.threshold import ThresholdRouter
from wrpsim.router.utility import UtilityRouter
from wrpsim.router.view import FleetView, InstanceView

__all__ = [
    "ROUTING_SCHEMA", "Answer", "BanditRouter", "CascadeRouter", "ChainRouter", "CompressAndRoute",
    "DowngradeRouter", "EnergyAwareRouter", "EnsembleRouter", "FleetView", "GuardedRouter",
    "InstanceView", "LeastKV", "LeastOutstanding", "ModelRouter", "OutputLengthAware",
    "Placement", "PowerOfD", "PrefixAware", "Random", "RequestView", "RoundRobin", "Router",
    "RuleRouter", "SessionAffinity",
    "SloAwareRouter", "ThresholdRouter", "TokenBudgetRouter", "UtilityRouter", "routing_table",
]
