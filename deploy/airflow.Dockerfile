# The official Airflow image with this provider baked in (no install at container start-up).
#
#   docker build -f deploy/airflow.Dockerfile -t airflow-bedrock-ft .
#
# AIRFLOW_VERSION equals deploy/cluster.env's and the apache-airflow pin of pyproject.toml's
# "cluster" extra (tests/unit/test_compose.py checks it). The provider is installed against
# the image's own constraints so pip never upgrades or downgrades Airflow itself.
ARG AIRFLOW_VERSION=3.3.2
ARG PYTHON_VERSION=3.11
FROM apache/airflow:${AIRFLOW_VERSION}-python${PYTHON_VERSION}
ARG AIRFLOW_VERSION
COPY --chown=airflow:0 . /tmp/airflow-bedrock-ft
RUN pip install --no-cache-dir "apache-airflow==${AIRFLOW_VERSION}" \
        "apache-airflow-providers-celery" "apache-airflow-providers-postgres" \
        /tmp/airflow-bedrock-ft \
    && rm -rf /tmp/airflow-bedrock-ft
