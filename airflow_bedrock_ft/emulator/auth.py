"""SigV4 verification of the requests the emulator serves, as AWS does it.

The expected signature is computed by botocore's own signer (:class:`botocore.auth.SigV4Auth`)
over the request as it arrived: the headers the client listed in ``SignedHeaders``, the raw
path and query, the body and the ``X-Amz-Date`` it sent. Errors have AWS's codes and statuses
(``MissingAuthenticationTokenException``, ``IncompleteSignatureException``,
``UnrecognizedClientException``, ``InvalidSignatureException``); the messages add which
access key ids the emulator accepts, never a secret.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from airflow_bedrock_ft.emulator.errors import EmulatorError

#: The key pair every client of the emulator uses unless told otherwise (not a secret).
DEFAULT_CREDENTIALS = {"testing": "testing"}

#: How far ``X-Amz-Date`` may be from the emulator's clock, as AWS allows.
MAX_CLOCK_SKEW = dt.timedelta(minutes=15)

_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+"
    r"Credential=(?P<akid>[^/,\s]+)/(?P<date>\d{8})/(?P<region>[^/,\s]+)/(?P<service>[^/,\s]+)/aws4_request\s*,\s*"
    r"SignedHeaders=(?P<signed>[a-z0-9\-;]+)\s*,\s*"
    r"Signature=(?P<signature>[0-9a-f]{64})\s*$"
)


def parse_credentials(specs: Iterable[str]) -> dict[str, str]:
    """``{"AKID": "SECRET"}`` from ``AKID:SECRET`` strings (command line, environment).

    :raises ValueError: for a spec without a colon or with an empty part.
    """
    pairs: dict[str, str] = {}
    for spec in specs:
        akid, sep, secret = spec.partition(":")
        if not sep or not akid.strip() or not secret:
            raise ValueError(f"credentials must be ACCESS_KEY_ID:SECRET_ACCESS_KEY, got {akid.strip()!r}:...")
        pairs[akid.strip()] = secret
    return pairs


@dataclass
class SigV4Verifier:
    """Checks the SigV4 signature of each request against known key pairs.

    :param credentials: secret access key per access key id.
    """

    credentials: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CREDENTIALS))

    def _accepted(self) -> str:
        return ", ".join(sorted(self.credentials)) or "(none)"

    def verify(
        self,
        method: str,
        raw_path: str,
        headers: Mapping[str, str],
        body: bytes,
        *,
        now: dt.datetime | None = None,
    ) -> None:
        """Return when the request is signed by a known key pair.

        :raises EmulatorError: with the code AWS answers for a missing, malformed, unknown or
            wrong signature.
        """
        header = headers.get("Authorization")
        if not header:
            raise EmulatorError(
                "MissingAuthenticationTokenException",
                "Missing Authentication Token: the request is not signed. Sign it with SigV4 "
                f"(any AWS SDK does); the emulator accepts the access key ids: {self._accepted()}.",
            )
        match = _AUTH_RE.match(header.strip())
        if match is None:
            raise EmulatorError(
                "IncompleteSignatureException",
                "The Authorization header is not a complete AWS4-HMAC-SHA256 signature "
                "(Credential=AKID/DATE/REGION/SERVICE/aws4_request, SignedHeaders=..., Signature=...).",
            )
        akid = match["akid"]
        secret = self.credentials.get(akid)
        if secret is None:
            raise EmulatorError(
                "UnrecognizedClientException",
                f"The security token included in the request is invalid: access key id {akid!r} is "
                f"unknown here; the emulator accepts: {self._accepted()} (check AWS_ACCESS_KEY_ID, "
                "AWS_PROFILE and the Airflow connection's login).",
            )
        amz_date = headers.get("X-Amz-Date", "")
        try:
            signed_at = dt.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise EmulatorError(
                "IncompleteSignatureException",
                "The request has no valid X-Amz-Date header (YYYYMMDDTHHMMSSZ).",
            ) from None
        current = now or dt.datetime.now(dt.timezone.utc)
        if abs(current - signed_at) > MAX_CLOCK_SKEW:
            raise EmulatorError(
                "InvalidSignatureException",
                f"Signature expired: {amz_date} is more than 15 minutes from the emulator's time "
                f"{current.strftime('%Y%m%dT%H%M%SZ')}.",
            )
        if match["date"] != amz_date[:8]:
            raise EmulatorError(
                "InvalidSignatureException",
                f"Credential should be scoped to a valid date: {match['date']} is not the date "
                f"of {amz_date}.",
            )
        signed = match["signed"].split(";")
        if "host" not in signed:
            raise EmulatorError("InvalidSignatureException", "'Host' must be a signed header.")
        kept = {name: headers[name] for name in signed if name in headers}
        host = headers.get("Host", "")
        request = AWSRequest(method=method.upper(), url=f"http://{host}{raw_path}", data=body, headers=kept)
        request.context["timestamp"] = amz_date
        signer = SigV4Auth(Credentials(akid, secret), match["service"], match["region"])
        canonical = signer.canonical_request(request)
        expected = signer.signature(signer.string_to_sign(request, canonical), request)
        if not hmac.compare_digest(expected, match["signature"]):
            raise EmulatorError(
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. "
                f"Check your AWS Secret Access Key for access key id {akid!r} and signing method.",
            )
