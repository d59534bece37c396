# The model service as an image: the promoted model, its contract and its record, behind
# `credit-risk serve`. Build it where models/model.joblib is the model dvc.lock records
# (after `dvc repro`, `dvc pull` or `dvc checkout`): the service refuses any other at start.
#   docker build -t credit-risk .
#   docker run --rm -p 8000:8000 credit-risk

# One exact base for both stages, so the venv built in the first runs on the same Python in the second.
# Named as a stage rather than given by an ARG: Dependabot cannot update an image named by an ARG
# (dependabot-core#2057). Dependabot or Renovate proposes each patch release as a pull request.
FROM python:3.11.14-slim-bookworm AS base

FROM base AS build
ENV VIRTUAL_ENV=/opt/venv
WORKDIR /build
COPY requirements.lock ./
# The lock is complete, with every file's hash: --no-deps installs exactly it, and spares pip a second
# resolution, which hash-checking mode does not support for packages required with extras.
RUN python -m venv "$VIRTUAL_ENV" \
    && "$VIRTUAL_ENV/bin/pip" install --no-cache-dir --no-deps --require-hashes -r requirements.lock

FROM base AS runtime
# The project runs from its source (PYTHONPATH) rather than being installed: the service needs no
# console command, and the image needs no build step, nor pyproject.toml, for it.
ENV VIRTUAL_ENV=/opt/venv
ENV PATH="$VIRTUAL_ENV/bin:$PATH" \
    PYTHONPATH=/app/src \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# A fixed numeric user, so an orchestrator can check that the image does not run as root.
RUN groupadd --system --gid 10001 app \
    && useradd --system --no-log-init --uid 10001 --gid app --home-dir /nonexistent --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
COPY src/ src/
# What the service reads from its working directory (params.yaml's `paths`): the contract requests
# are checked against, the md5 dvc.lock records, the promoted model's record, and the model itself.
COPY params.yaml schema.yaml dvc.lock ./
COPY production/baseline.json production/
COPY models/model.joblib models/
# Everything above stays root's and read-only to the service; it writes only its prediction log.
# Mount a volume here to keep the log beyond the container.
RUN install -d -o app -g app monitoring
USER 10001:10001
EXPOSE 8000
# Python's own HTTP client: the slim base has no curl, and the check needs nothing installed.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["python", "-m", "credit_risk.cli", "serve", "--host", "0.0.0.0", "--port", "8000"]
