extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis FLOPs"
exclude_patterns = ["_build"]
