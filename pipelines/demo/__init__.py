"""The demo world: generated exports with planted defects and known true effects."""
