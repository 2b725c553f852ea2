# The official Airflow image with this provider baked in (no install at container start-up).
#
#   docker build -f deploy/airflow.Dockerfile -t airflow-bedrock-ft .
#
# AIRFLOW_VERSION equals deploy/cluster.env's and the apache-airflow pin of pyproject.toml's
# "cluster" extra (tests/unit/test_compose.py checks it). The provider is installed against
# Airflow pinned to the image's version so pip never moves Airflow itself; the image already
# ships the Celery and PostgreSQL providers, which pip leaves as they are.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
COPY --chown=airflow:0 . /tmp/airflow-bedrock-ft
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" /tmp/airflow-bedrock-ft \
    && rm -rf /tmp/airflow-bedrock-ft
# The simple auth manager's passwords file lives on a shared volume; a named volume mounted
# here takes this directory's owner (airflow, group 0) and mode.
RUN mkdir -p -m 0775 /opt/airflow/auth
