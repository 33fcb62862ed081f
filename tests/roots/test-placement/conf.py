extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis placement views"
exclude_patterns = ["_build"]
