extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis forward views"
exclude_patterns = ["_build"]
