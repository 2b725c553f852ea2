"""A local Amazon Bedrock emulator: model customization control plane, runtime for the
models it trains, an embedded S3 server, fault injection and persistence.

Nothing here imports Airflow. Start it from Python with :func:`start_emulator` or from the
command line with ``airflow-bedrock-ft emulator --port 5055``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_bedrock_ft.emulator.server import Emulator, start_emulator

__all__ = ["Emulator", "start_emulator"]


def __getattr__(name: str) -> Any:
    # Imported lazily: the server pulls in aiohttp and botocore, which ``trainer`` users
    # and the dataset tools do not need.
    if name in __all__:
        from airflow_bedrock_ft.emulator import server

        return getattr(server, name)
    raise AttributeError(name)
