"""Storage: schema, engine, reference data and the few writes the call flow needs."""
