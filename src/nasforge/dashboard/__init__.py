"""The dashboard and the HTML report: see the search in a browser."""

__all__: list[str] = []
