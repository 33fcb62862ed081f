extensions = ["myst_parser", "sphinx_modelvis"]
project = "modelvis interactive figures"
exclude_patterns = ["_build"]
html_theme = "furo"
