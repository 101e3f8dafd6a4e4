"""PPSS follow-up: raw exports -> validated rows -> DuckDB store -> marts -> notebooks -> reports."""

import sys

__version__ = "0.1.0"

# jsonschema (under nbformat, papermill and altair) checks the "iri" format with rfc3987_syntax
# when that is installed (jupyter-events' format-nongpl extra pulls it in), and importing it
# builds an Earley grammar: 1-2 s in every process that imports pipelines (the report's CLI,
# its kernel, each test). No schema validated here uses an "iri" format (the notebook and
# Vega-Lite schemas have none), so jsonschema is told the module is absent.
sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
