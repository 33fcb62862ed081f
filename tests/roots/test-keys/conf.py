extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis key roles"
exclude_patterns = ["_build"]
html_theme = "furo"
