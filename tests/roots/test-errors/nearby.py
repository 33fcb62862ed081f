"""A module next to the pages: snippets import it whatever folder the build was started in."""

MESSAGE = "imported from the page's folder"
