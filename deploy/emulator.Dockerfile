# syntax=docker/dockerfile:1
# The local Bedrock emulator (control plane, runtime, embedded S3) without Airflow.
#
#   docker build -f deploy/emulator.Dockerfile -t bedrock-ft-emulator .
#
# The package's own dependencies include Airflow (it is a provider), so it is installed with
# --no-deps, then exactly pyproject.toml's "emulator" extra, which lists everything the
# emulator imports (tests/unit/test_compose.py runs a job with nothing else importable).
ARG PYTHON_VERSION=3.11
FROM python:${PYTHON_VERSION}-slim
WORKDIR /src
COPY pyproject.toml README.md ./
COPY airflow_bedrock_ft ./airflow_bedrock_ft
RUN python - <<'PY' > /tmp/emulator-requirements.txt
import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["optional-dependencies"]["emulator"]))
PY
RUN pip install --no-cache-dir -r /tmp/emulator-requirements.txt \
    && pip install --no-cache-dir --no-deps . \
    && ! python -c "import airflow" 2>/dev/null \
    && rm -rf /src \
    && mkdir /state && chown 65534:65534 /state
# A named volume mounted here starts with this directory's owner, so the emulator can write.
WORKDIR /state
USER 65534:65534
EXPOSE 5055 5056
ENTRYPOINT ["airflow-bedrock-ft", "emulator"]
CMD ["--host", "0.0.0.0", "--port", "5055", "--s3-port", "5056", "--state", "/state/emulator.sqlite"]
