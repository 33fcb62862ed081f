extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis memory views"
exclude_patterns = ["_build"]
