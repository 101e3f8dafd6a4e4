"""From protected figures to the reader: tables, charts, provenance and the rendered report
(papermill, nbconvert, PDF).
"""
