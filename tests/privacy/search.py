"""Searching a whole database for a person: every column of every table, read as text."""

from __future__ import annotations

from clickhouse_connect.driver.client import Client


def tables(client: Client) -> list[str]:
    rows = client.query(
        "SELECT name FROM system.tables WHERE database = currentDatabase() "
        "AND engine NOT LIKE '%View%' ORDER BY name"
    ).result_rows
    return [r[0] for r in rows]


def found(client: Client, needle: str) -> dict[str, int]:
    """Table -> rows where any column, read as text, contains `needle` (with the rows a
    lightweight delete would only mask: `apply_deleted_mask = 0`)."""
    out = {}
    for table in tables(client):
        columns = [
            r[0]
            for r in client.query(
                "SELECT name FROM system.columns WHERE database = currentDatabase() "
                "AND table = {t:String}",
                parameters={"t": table},
            ).result_rows
        ]
        text = "concat(" + ", '|', ".join(f"toString(`{c}`)" for c in columns) + ")"
        n = client.query(
            f"SELECT count() FROM `{table}` WHERE position({text}, {{n:String}}) > 0",
            parameters={"n": needle},
            settings={"apply_deleted_mask": 0},
        ).result_rows[0][0]
        if n:
            out[table] = n
    return out


if __name__ == "__main__":  # `python -m tests.privacy.search DSN NEEDLE...`: JSON on stdout
    import sys

    import orjson

    from streams.clickhouse.client import connect

    db = connect(sys.argv[1])
    print(orjson.dumps({needle: found(db, needle) for needle in sys.argv[2:]}).decode())
