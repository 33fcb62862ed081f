extensions = ["sphinx_modelvis"]
project = "modelvis options"
numfig = True
exclude_patterns = ["_build"]
# What the epub builder asks of every project.
version = "1.0"
copyright = "sphinx-modelvis tests"
