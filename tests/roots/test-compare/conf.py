extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis comparisons"
exclude_patterns = ["_build"]
