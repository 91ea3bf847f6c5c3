"""The journey core: pure functions over plain state. No I/O, no framework imports.

Identity (`identity`), sessions and friction (`journey`, `session`, `friction`), per-minute
aggregates (`aggregates`) and their in-process composition (`pipeline`) run unchanged in the
embedded runner and inside Faust agents. A test forbids importing Kafka, Faust, ClickHouse or
Prometheus clients from here.
"""
