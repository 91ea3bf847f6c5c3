"""The ClickHouse adapter: one client factory and the migration runner."""
