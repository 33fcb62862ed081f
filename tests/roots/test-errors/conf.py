extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis errors"
exclude_patterns = ["_build"]
