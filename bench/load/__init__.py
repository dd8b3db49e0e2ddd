"""Load tests driven by MLPerf LoadGen: a dynamic batcher in front of the recommendation loop, LoadGen's SUT and
QSL around it, log parsing, and the run that turns a scenario's `load:` section into a result."""
