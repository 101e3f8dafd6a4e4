"""PPSS follow-up: raw exports -> validated rows -> DuckDB store -> marts -> notebooks -> reports."""

__version__ = "0.1.0"
