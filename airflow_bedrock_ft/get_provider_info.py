"""Provider metadata read by Airflow's providers manager.

Registered through the ``apache_airflow_provider`` entry point. The module imports only the
package's version (no Airflow, no boto3), so ``airflow providers list``, which loads every
provider's metadata, stays fast.
"""

from __future__ import annotations

from typing import Any

from airflow_bedrock_ft import __version__

_INTEGRATION = "Amazon Bedrock Fine-Tuning"


def get_provider_info() -> dict[str, Any]:
    """Return the provider description Airflow's providers manager expects."""
    return {
        # Must equal the distribution name, or the providers manager rejects the whole list.
        "package-name": "airflow-bedrock-ft",
        "name": "Amazon Bedrock Fine-Tuning",
        "description": (
            "Run Amazon Bedrock model-customization jobs (fine-tuning, continued pre-training, "
            "distillation, reinforcement fine-tuning) from Airflow, with idempotent submission, "
            "deferrable waiting and a local Bedrock emulator."
        ),
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.aws.amazon.com/bedrock/latest/userguide/custom-models.html",
                "tags": ["aws"],
            }
        ],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": [
                    "airflow_bedrock_ft.operators.bedrock_ft",
                    "airflow_bedrock_ft.operators.cleanup",
                    "airflow_bedrock_ft.operators.metrics",
                    "airflow_bedrock_ft.operators.prepare",
                    "airflow_bedrock_ft.operators.reaper",
                    "airflow_bedrock_ft.operators.registry",
                    "airflow_bedrock_ft.operators.serving",
                    "airflow_bedrock_ft.operators.evaluate",
                ],
            }
        ],
        "sensors": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_bedrock_ft.sensors.bedrock_ft"],
            }
        ],
        "triggers": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_bedrock_ft.triggers.bedrock_ft"],
            }
        ],
        "hooks": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["airflow_bedrock_ft.hooks.bedrock_ft"],
            }
        ],
        "extra-links": ["airflow_bedrock_ft.links.BedrockFineTuneJobLink"],
        "config": {
            "bedrock_ft": {
                "description": "Defaults of the Amazon Bedrock fine-tuning operators and sensor.",
                "options": {
                    "default_deferrable": {
                        "description": (
                            "Whether the operators and the sensor wait in the triggerer (no worker "
                            "slot) when a task does not say. Airflow's own [operators] "
                            "default_deferrable ships as False; jobs that take hours to days should "
                            "not hold a worker slot, so this provider defaults to True."
                        ),
                        "version_added": "0.1.0",
                        "type": "boolean",
                        "example": "False",
                        "default": "True",
                    },
                    "price_file": {
                        "description": (
                            "A price table (JSON lines: model, customization_type, region, "
                            "training_usd_per_1k_tokens, storage_usd_per_month, source, date) whose "
                            "entries override the built-in one in cost estimates and budget checks. "
                            "Empty: the built-in table only."
                        ),
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "/opt/airflow/bedrock-prices.jsonl",
                        "default": "",
                    },
                },
            }
        },
    }
