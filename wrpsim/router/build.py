"""Building a router from its config: the policy's class instantiated from `_target_` and its
keyword arguments, the deployment keys (`view`, `replicas`, `service`, `cache`) parsed apart, and
a config the class cannot take turned into one line naming the key or the cause.
"""

from __future__ import annotations

import sys

from wrpsim.errors import ConfigError, check_keys, did_you_mean
from wrpsim.router.checked import check_user_params

DEPLOYMENT_KEYS = ("view", "replicas", "service", "cache")


def router_deployment(rcfg: dict) -> tuple:
    """(ViewSpec, ServiceSpec) of the `router` config's `view`, `replicas` and `service`."""
    from wrpsim.router.service import ServiceSpec
    from wrpsim.router.view import ViewSpec

    rcfg = rcfg if isinstance(rcfg, dict) else {}
    return (ViewSpec.parse(rcfg.get("view")),
            ServiceSpec.parse(rcfg.get("replicas"), rcfg.get("service")))


def _router_keys(cls) -> list[str]:
    """The keyword arguments `cls` accepts: its constructor's named parameters and, while a
    constructor passes `**kwargs` on, its bases' (empty when it takes none)."""
    import inspect

    keys: list[str] = []
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        params = list(inspect.signature(init).parameters.values())[1:]
        keys += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                 and p.name not in keys]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            break
    return sorted(keys)


def _router_type_error(rcfg: dict, cause: TypeError) -> str:
    """One line for a router config whose keys its class does not take."""
    from hydra.utils import get_class

    target = rcfg["_target_"]
    given = sorted(k for k in rcfg if k != "_target_")
    try:
        valid = _router_keys(get_class(target))
    except Exception:  # the class itself failed to load: say what Python said
        return f"router: cannot instantiate {target!r}: {' '.join(str(cause).split())}"
    if not valid and given:
        return f"router: unknown key(s) {given}; {target} takes no settings"
    try:
        check_keys(dict.fromkeys(given), valid, f"router ({target})")
    except ConfigError as e:
        return str(e)
    return f"router: cannot instantiate {target!r}: {' '.join(str(cause).split())}"


def _instantiation_error(target: str, exc: BaseException) -> str:
    """One line for a router `_target_` that failed to load or construct: Hydra's message says
    only 'Error locating target …, set env var HYDRA_FULL_ERROR=1'; the cause (a missing
    package, a syntax error in the module, a class the module lacks) is at the end of the
    chain of exceptions behind it."""
    chain, c = [], exc.__cause__
    while c is not None and len(chain) < 20:
        chain.append(c)
        c = c.__cause__ or c.__context__
    real = [c for c in chain if not str(c).startswith("Error loading ")]
    if not real:
        return f"router: cannot instantiate {target!r}: {' '.join(str(exc).split())}"
    cause = real[-1]
    if isinstance(cause, SyntaxError):
        text = f"SyntaxError: {cause.msg} ({cause.filename}, line {cause.lineno})"
    else:
        text = f"{type(cause).__name__}: {' '.join(str(cause).split())}"
    module = target.rpartition(".")[0]
    mod = sys.modules.get(module)
    if isinstance(cause, AttributeError) and mod is not None:
        from wrpsim.router.base import Router

        # (a package such as wrpsim.router re-exports its modules' routers, loaded on first
        # use: `dir` lists them, `getattr` loads them — this is the error path)
        found = []
        for k in dir(mod):
            try:
                v = getattr(mod, k)
            except (ImportError, AttributeError):
                continue
            if (isinstance(v, type) and issubclass(v, Router) and v is not Router
                    and (v.__module__ == module or v.__module__.startswith(module + "."))):
                found.append(k)
        if found:
            name = target.rpartition(".")[2]
            text += f"; its routers: {', '.join(found)}{did_you_mean(name, found)}"
    return f"router: cannot load {target!r}: {text}"


def build_router(rcfg: dict):
    """Instantiate the router config (`_target_` plus keyword arguments; the deployment keys
    `view`, `replicas`, `service` and `cache` are not the policy's: `router_deployment`,
    `wrpsim.router.semcache`)."""
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    from wrpsim.paths import use_user_modules
    from wrpsim.router.base import Router

    if not isinstance(rcfg, dict) or "_target_" not in rcfg:
        raise ConfigError("router: must be a mapping with a _target_ (see routers/README.md)")
    rcfg = {k: v for k, v in rcfg.items() if k not in DEPLOYMENT_KEYS}
    use_user_modules()  # a router module of the user's catalog (`wrpsim.paths`)
    check_user_params(rcfg)
    try:
        router = instantiate(rcfg)
    except InstantiationException as e:
        cause = e.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        if isinstance(cause, TypeError):
            raise ConfigError(_router_type_error(rcfg, cause)) from None
        raise ConfigError(_instantiation_error(rcfg["_target_"], e)) from None
    if not isinstance(router, Router):
        raise ConfigError(f"router: {rcfg['_target_']!r} is not a wrpsim.router.Router")
    return router
