# A project whose one figure fails: the errors that end a build, as a user sees them.
extensions = ["sphinx_modelvis"]
project = "modelvis raise"
