# The Parcours image: worker, sink stage and CLI.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY streams ./streams
COPY infra/clickhouse ./infra/clickhouse
RUN pip install --no-cache-dir '.[chdb]'
ENTRYPOINT ["parcours"]
