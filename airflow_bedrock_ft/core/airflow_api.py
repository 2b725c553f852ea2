"""A small client for Airflow 3's public REST API (``/api/v2``): task instance states.

Plain Python over ``httpx`` (installed with Airflow), no ``airflow`` import, so that the
``airflow-bedrock-ft reap`` command runs anywhere that can reach the api-server.

Authentication: a JWT given as ``token``, or one obtained from ``POST /auth/token`` with
``username`` and ``password`` (the simple and the FAB auth managers both offer it), or, with
neither, from ``GET /auth/token``, which only the simple auth manager's all-admins mode
answers. A token that is refused (expired) is renewed once from the credentials. Tokens and passwords never
appear in errors or logs.
"""

from __future__ import annotations

import datetime
from typing import Any
from urllib.parse import quote

from airflow_bedrock_ft.core.reaper import TaskInstanceRef, TaskInstanceState


class AirflowApiError(RuntimeError):
    """Airflow's REST API refused or failed a request (the status and Airflow's detail are in the message)."""


def _detail(response: Any) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])[:300]
    return str(body)[:300]


def _parse_time(value: Any) -> datetime.datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)


class AirflowApiClient:
    """Reads task instance states from an Airflow 3 api-server; a :class:`TaskStateLookup`.

    .. seealso::
        https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html

    :param base_url: the api-server, e.g. ``http://localhost:8080`` (a trailing ``/api/v2`` is
        accepted).
    :param token: a JWT to send as is.
    :param username: user for ``POST /auth/token``.
    :param password: that user's password.
    :param timeout: seconds per request.
    :param transport: an ``httpx`` transport (tests); default a real connection.
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        transport: Any = None,
    ) -> None:
        import httpx

        if not base_url or not base_url.startswith(("http://", "https://")):
            raise ValueError(f"airflow_url must be an http(s) URL, got {base_url!r}")
        if (username is None) != (password is None):
            raise ValueError("username and password go together: give both, or a token, or neither")
        root = base_url.rstrip("/")
        root = root.removesuffix("/api/v2")
        self.base_url = root
        self._token = token
        self._username = username
        self._password = password
        self._http = httpx.Client(base_url=root, timeout=timeout, transport=transport)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> AirflowApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- auth -----------------------------------------------------------------------------

    def _fetch_token(self) -> str:
        if self._username is not None:
            response = self._http.post(
                "/auth/token", json={"username": self._username, "password": self._password}
            )
            how = f"POST /auth/token as {self._username!r}"
        else:
            response = self._http.get("/auth/token")
            how = (
                "GET /auth/token (no credentials given; only the simple auth manager's all-admins "
                "mode allows it)"
            )
        if response.status_code not in (200, 201):
            raise AirflowApiError(
                f"Could not get an Airflow API token: {how} answered HTTP {response.status_code}: "
                f"{_detail(response)}. Pass a token, or a username and password."
            )
        token = response.json().get("access_token")
        if not isinstance(token, str) or not token:
            raise AirflowApiError(f"Could not get an Airflow API token: {how} returned no access_token.")
        return token

    def _get(self, path: str) -> Any:
        can_renew = self._token is None or self._username is not None
        if self._token is None:
            self._token = self._fetch_token()
        response = self._http.get(path, headers={"Authorization": f"Bearer {self._token}"})
        # Airflow answers 401 or 403 ("Invalid JWT token") for an expired token: renew once.
        if response.status_code in (401, 403) and can_renew:
            self._token = self._fetch_token()
            response = self._http.get(path, headers={"Authorization": f"Bearer {self._token}"})
        return response

    # --- reads ----------------------------------------------------------------------------

    def task_instance(self, ti: TaskInstanceRef) -> dict[str, Any] | None:
        """The task instance as the API returns it, or None when Airflow has no such one (404).

        :param ti: the task instance.
        :raises AirflowApiError: for any other answer than 200 or 404.
        """
        parts = [quote(ti.dag_id, safe=""), quote(ti.run_id, safe=""), quote(ti.task_id, safe="")]
        path = "/api/v2/dags/{}/dagRuns/{}/taskInstances/{}".format(*parts)
        if ti.map_index >= 0:
            path += f"/{ti.map_index}"
        response = self._get(path)
        if response.status_code == 404:
            return None
        if response.status_code != 200:
            raise AirflowApiError(
                f"GET {path} answered HTTP {response.status_code}: {_detail(response)}"
            )
        body = response.json()
        if not isinstance(body, dict):
            raise AirflowApiError(f"GET {path} returned {type(body).__name__}, not a task instance")
        return body

    def task_state(self, ti: TaskInstanceRef) -> TaskInstanceState | None:
        """The state, end date and try number of ``ti``; None when it does not exist.

        :param ti: the task instance.
        :raises AirflowApiError: when the API cannot say.
        """
        body = self.task_instance(ti)
        if body is None:
            return None
        if "state" not in body:
            raise AirflowApiError(f"The API's task instance {ti} has no 'state' field")
        try_number = body.get("try_number")
        return TaskInstanceState(
            state=body["state"],
            end_date=_parse_time(body.get("end_date")),
            try_number=try_number if isinstance(try_number, int) else None,
        )
