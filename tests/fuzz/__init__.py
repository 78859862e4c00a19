"""Fuzz targets: parsers fed random and mutated input raise only their documented errors."""
