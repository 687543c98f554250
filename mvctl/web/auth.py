"""Bearer tokens for mvctl's network endpoints: where a token comes from, and checking one
in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from pathlib import Path

from mvctl.errors import OperationalError, UsageError

TOKEN_ENV = "MVCTL_WEBHOOK_TOKEN"  # noqa: S105 - the variable's name, not a secret


def load_token(
    token_file: Path | None,
    environ: Mapping[str, str],
    *,
    env: str = TOKEN_ENV,
    server: str = "the webhook",
) -> str:
    """The bearer token: from ``token_file``, else the variable ``env`` (the webhook's
    ``MVCTL_WEBHOOK_TOKEN`` unless told); none is an error."""
    token = ""
    if token_file is not None:
        try:
            with token_file.open("rb") as handle:
                raw = handle.read(4097)  # a token is one line: never read a stray big file
            if len(raw) > 4096:
                raise OperationalError(f"--token-file {token_file} is longer than 4 KiB")
            token = raw.decode("utf-8").strip()
        except OSError as exc:
            raise UsageError(f"cannot read --token-file {token_file}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise OperationalError(
                f"--token-file {token_file} is not UTF-8 text",
                hint="write the token as one line of plain text",
            ) from None
    else:
        token = environ.get(env, "").strip()
    if len(token) < 16:
        raise UsageError(
            f"{server} needs a bearer token of at least 16 characters",
            hint=f"set {env} or pass --token-file; the server refuses to run without one",
        )
    return token


def bearer_ok(header: str, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``token``, compared in constant time."""
    return hmac.compare_digest(header.encode(), f"Bearer {token}".encode())
