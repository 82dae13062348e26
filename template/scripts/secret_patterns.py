"""Secrets that detect-secrets' own plugins let through, for the `detect-secrets` git hook (`--plugin`).

Each is a regular expression of a token's published format, so that a false positive is unlikely; a line
that holds one on purpose ends with `# pragma: allowlist secret`.
"""

import re

from detect_secrets.plugins.base import RegexBasedDetector


class HuggingFaceToken(RegexBasedDetector):
    """A Hugging Face access token: `hf_` and 34 or more letters and digits."""

    secret_type = "Hugging Face token"  # noqa: S105  # pragma: allowlist secret
    denylist = (re.compile(r"\bhf_[A-Za-z0-9]{34,}\b"),)


class DatabricksToken(RegexBasedDetector):
    """A Databricks personal access token: `dapi` and 32 hexadecimal digits."""

    secret_type = "Databricks token"  # noqa: S105  # pragma: allowlist secret
    denylist = (re.compile(r"\bdapi[0-9a-f]{32}(?:-\d+)?\b"),)


class SecretAssignment(RegexBasedDetector):
    """A long value given to a name that says it is secret (`API_TOKEN=3f9a...`, `secret_key: "..."`),
    which the keyword plugin misses when the value is hexadecimal."""

    secret_type = "Value of a secret-named setting"  # noqa: S105  # pragma: allowlist secret
    denylist = (
        re.compile(
            r"(?i)\b\w*(?:token|secret|api_?key|passw(?:or)?d)\w*[\"']?\s*[:=]\s*[\"']?"
            r"([A-Za-z0-9+/_-]{24,}={0,2})(?![A-Za-z0-9+/_-])"
        ),
    )
