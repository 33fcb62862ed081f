"""The MkDocs plugin (``plugins: [modelvis]``); MkDocs is an optional extra."""
