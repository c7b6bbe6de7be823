"""wrpsim's catalogs as a Hydra config source (`catalog_source`): found by Hydra's scan of the
`hydra_plugins` namespace package, so this package stays free of heavy imports."""
