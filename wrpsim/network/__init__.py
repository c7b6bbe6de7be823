"""The leaf-spine network: topology, ECMP hashing, load balancing, fluid and packet engines.

Modules (one concept each): `config` (parameters, validation), `topology` (ports, rates, paths),
`hashing` (deterministic salted ECMP), `paths` (load-balancing modes), `coloring` (König edge
colouring for `split`), `fluid` (max-min engine), `packet` and `transport` (packet engine),
`patterns` (standalone traffic), `scenario` (one standalone run), `records` (Arrow schemas),
`placement` (instances on GPUs), `transfer` (the `Fabric` API the pools use), `theory` (closed
forms). Nothing is imported here, so `import wrpsim.network` stays cheap. See docs/network.md.
"""

#: keys of the main app's `network` group that configure fleet runs, not the fabric
#: (`wrpsim.pool.spanning`): `transfer.build_fabric` leaves them out
FLEET_KEYS = ("collectives", "collective_alpha_us")
#: keys every network option's file lists (null, false) though only these kinds take another
#: value (`config._check_window`; the collectives: `wrpsim.pool.spanning`); the hints for a key
#: of another option name only these (`wrpsim.hydra_errors`)
VALUE_KINDS = {"packet_window": ("fluid",), "collectives": ("fluid", "packet"),
               "collective_alpha_us": ("fluid", "packet")}
