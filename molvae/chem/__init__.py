"""Chemistry: ingest, standardization, fingerprints, properties and search."""
