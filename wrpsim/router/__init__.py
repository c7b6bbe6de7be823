"""Routers: the Router contract and built-in policies."""

from wrpsim.router.affinity import PrefixAware, SessionAffinity
from wrpsim.router.base import Placement, Router
from wrpsim.router.policies import LeastKV, LeastOutstanding, PowerOfD, Random, RoundRobin

__all__ = [
    "LeastKV", "LeastOutstanding", "Placement", "PowerOfD", "PrefixAware", "Random", "RoundRobin",
    "Router", "SessionAffinity",
]
