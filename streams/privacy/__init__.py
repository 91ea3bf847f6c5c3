"""Privacy by design (issue 16): PII kept out, pseudonymous ids, erasure, retention.

- `scrub`, `keys`, `policy`, `subject`: pure (no I/O): the scrubber, keyed hashes, the filter
  applied to everything decoded, and who an erasure is about.
- `settings`, `setup`, `erase`, `retention`, `report`: the shell around them (environment, the
  key file, ClickHouse).
"""
