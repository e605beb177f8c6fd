# syntax=docker/dockerfile:1
# The operator image (also what backup and restore Jobs run: the `backup` extra brings boto3 and the
# PostgreSQL 18 client programs): slim, non-root, read-only root filesystem friendly. Build with
#   docker build -t ghcr.io/addonstack/addonstack-operator:0.1.0 .
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator ./operator
COPY catalog ./catalog
RUN pip wheel --no-cache-dir --wheel-dir /wheels '.[operator,backup]'

FROM python:3.11.14-slim-bookworm
RUN useradd --system --uid 10001 --user-group --no-create-home addonstack
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links=/wheels 'addonstack[operator,backup]' && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["addonstack"]
CMD ["operator", "run"]
