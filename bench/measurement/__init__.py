"""The measurement flow of one point: preflight, prepare, a measurement strategy (timed batches or a LoadGen
load test), derived figures, and the assembly of the typed result."""
