"""An example CDBench plugin: `method`, `task` and `model` are what its entry points name."""
