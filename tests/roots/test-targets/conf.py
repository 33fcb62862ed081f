extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis adapter previews"
exclude_patterns = ["_build"]
