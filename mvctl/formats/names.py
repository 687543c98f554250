"""Validation of every user-supplied name, and SemVer versions (DESIGN.md vocabulary)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from mvctl.errors import UsageError

# '$' also matches before a trailing newline, so '^...$' alone lets 'fraud\n' through. The
# compiled patterns refuse any newline with a lookahead, which keeps them whole-string
# matches for .match() and keeps the '^...$' form that other modules embed with
# .pattern.strip("^$"); NAME_PATTERN and SEMVER_PATTERN are the bare forms to embed.
_NO_NEWLINE = r"(?![^\n]*\n)"
NAME_PATTERN = r"[a-z0-9](?:[a-z0-9_-]{0,62}[a-z0-9])?"
NAME_RE = re.compile(rf"^{_NO_NEWLINE}{NAME_PATTERN}$")

# A tag name stays within 128 characters (git and the file systems that store loose refs
# refuse long names, and only after the artifacts were uploaded): a 64-character model, '@',
# the version and '#gold' leave 58 for the version, 'v' included. The lookahead caps the
# run of version characters, so the cap holds wherever the pattern is embedded, and no
# number ever reaches int() with more digits than it can convert.
MAX_VERSION_LENGTH = 58
_NUM = r"0|[1-9]\d*"
_PRE_ID = r"(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
SEMVER_PATTERN = (
    rf"v(?=[0-9A-Za-z.+-]{{5,{MAX_VERSION_LENGTH - 1}}}(?![0-9A-Za-z.+-]))"
    rf"(?P<major>{_NUM})\.(?P<minor>{_NUM})\.(?P<patch>{_NUM})"
    rf"(?:-(?P<pre>{_PRE_ID}(?:\.{_PRE_ID})*))?"
    r"(?:\+(?P<build>[0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)
SEMVER_RE = re.compile(rf"^{_NO_NEWLINE}{SEMVER_PATTERN}$")
_SHOWN = 40  # characters of a refused value an error message repeats


def shown(text: str) -> str:
    """``text`` for an error message: quoted, with control characters escaped, and cut
    short, so a hostile value never floods the terminal or forges a line of output."""
    if len(text) <= _SHOWN:
        return repr(text)
    return f"{text[:_SHOWN]!r}... ({len(text)} characters)"


Bump = Literal["major", "minor", "patch"]

# Query parameters that carry a secret in the URLs of DVC's remotes and of git hosts: S3 and
# MinIO keys, presigned S3/GCS signatures, Azure SAS tokens, WebDAV/HTTP passwords, OAuth.
SECRET_PARAMS = frozenset(
    {
        "access_key",
        "access_key_id",
        "secret",
        "secret_key",
        "secret_access_key",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "session_token",
        "security_token",
        "token",
        "access_token",
        "refresh_token",
        "auth",
        "password",
        "passwd",
        "pwd",
        "key",
        "api_key",
        "apikey",
        "account_key",
        "sas_token",
        "sig",
        "signature",
        "client_secret",
        "credential",
        "credentials",
        "x-amz-credential",
        "x-amz-signature",
        "x-amz-security-token",
        "x-goog-credential",
        "x-goog-signature",
    }
)
_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^/@:?#]*):[^/?#]*@")
_QUERY_PAIR = re.compile(r"(?P<key>(?<=[?&;])[^=&;#]+)=(?P<value>[^&;#]*)")


# Schemes whose user info is a credential even without a password (a token as the user
# name: https://TOKEN@github.com/...). An ssh user (git@host) names an account, not a secret.
_TOKEN_SCHEMES = frozenset(
    "http https s3 gs gcs azure az webdav webdavs webhdfs oss".split()  # noqa: SIM905
)
_USER_ONLY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://[^/@?#]+@")


def secret_in_url(url: str) -> str | None:
    """What in ``url`` is a credential (a password in its user info, a token as the user of
    an http(s) or object-store URL, a secret query parameter), in words that never repeat
    it; None when it carries none."""
    if _USERINFO.search(url):
        return "a password in its user info (user:password@)"
    user = _USER_ONLY.match(url)
    if user and user["scheme"].lower() in _TOKEN_SCHEMES:
        return "a user name or token in its user info (user@)"
    _, _, query = url.partition("?")
    for match in _QUERY_PAIR.finditer(f"?{query.partition('#')[0]}" if query else ""):
        if match["key"].lower() in SECRET_PARAMS:
            return f"the secret query parameter {match['key']!r}"
    return None


_TOKEN_USER = re.compile(r"(?P<scheme>(?P<name>[A-Za-z][A-Za-z0-9+.-]*)://)(?P<user>[^/@:?#]+)@")


def _mask_token_user(match: re.Match[str]) -> str:
    """A user name alone is a token in the schemes that take tokens (https://TOKEN@host)."""
    if match["name"].lower() in _TOKEN_SCHEMES:
        return f"{match['scheme']}***@"
    return match[0]


def redacted_url(url: str) -> str:
    """``url`` fit to print: a password and the values of secret query parameters masked."""
    text = _USERINFO.sub(r"\g<scheme>\g<user>:***@", url)
    text = _TOKEN_USER.sub(_mask_token_user, text)
    head, sep, query = text.partition("?")
    if not sep:
        return text

    def mask(match: re.Match[str]) -> str:
        secret = match["key"].lower() in SECRET_PARAMS
        return f"{match['key']}={'***' if secret else match['value']}"

    return head + sep + _QUERY_PAIR.sub(mask, f"?{query}")[1:]


def check_model(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid model name {shown(name)}",
            hint="use lowercase letters, digits, '-' and '_' (1-64 chars), "
            "starting and ending with a letter or digit",
        )
    return name


def check_channel(name: str) -> str:
    if not NAME_RE.match(name):
        raise UsageError(
            f"invalid channel name {shown(name)}",
            hint="channel names follow the model name rule, e.g. production",
        )
    return name


@dataclass(frozen=True, order=False)
class Version:
    """A SemVer 2.0 version written with a leading 'v' (v1.4.0)."""

    major: int
    minor: int
    patch: int
    pre: str = ""
    build: str = ""

    @classmethod
    def parse(cls, text: str) -> Version:
        match = SEMVER_RE.match(text)
        if not match:
            if len(text) > MAX_VERSION_LENGTH:
                raise UsageError(
                    f"version {shown(text)} is too long",
                    hint=f"a version has at most {MAX_VERSION_LENGTH} characters",
                )
            raise UsageError(
                f"invalid version {shown(text)}", hint="versions are 'v' + SemVer, e.g. v1.4.0"
            )
        return cls(
            int(match["major"]),
            int(match["minor"]),
            int(match["patch"]),
            match["pre"] or "",
            match["build"] or "",
        )

    @classmethod
    def is_valid(cls, text: str) -> bool:
        return SEMVER_RE.match(text) is not None

    def __str__(self) -> str:
        text = f"v{self.major}.{self.minor}.{self.patch}"
        if self.pre:
            text += f"-{self.pre}"
        if self.build:
            text += f"+{self.build}"
        return text

    def sort_key(self) -> tuple[int, int, int, int, tuple[tuple[int, int | str], ...]]:
        # SemVer precedence: a pre-release sorts before its release; numeric
        # identifiers sort before alphanumeric ones; build metadata is ignored.
        pre_ids: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in self.pre.split(".")
        )
        return (self.major, self.minor, self.patch, 0 if self.pre else 1, pre_ids)

    def bump(self, part: Bump) -> Version:
        if part == "major":
            return Version(self.major + 1, 0, 0)
        if part == "minor":
            return Version(self.major, self.minor + 1, 0)
        # A patch bump of a pre-release releases it, as SemVer tools do.
        if self.pre:
            return Version(self.major, self.minor, self.patch)
        return Version(self.major, self.minor, self.patch + 1)


FIRST_VERSION = Version(0, 1, 0)


def latest(versions: list[Version]) -> Version | None:
    return max(versions, key=Version.sort_key, default=None)


def next_version(existing: list[Version], bump: Bump) -> Version:
    top = latest(existing)
    if top is None:
        return FIRST_VERSION
    candidate = top.bump(bump)
    # A patch bump of the newest pre-release might land on a released version
    # already taken; versions are never reused, so keep bumping.
    taken = {v.sort_key() for v in existing}
    while candidate.sort_key() in taken:
        candidate = candidate.bump("patch")
    return candidate


MAX_TEXT = 2000  # characters of a reason, description or label: a sentence, not a file
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def check_text(value: str, what: str, limit: int = MAX_TEXT) -> str:
    """Free text that goes into tag messages and tables: bounded, and without control
    characters (a newline is allowed in a description, not a terminal escape)."""
    if len(value) > limit:
        raise UsageError(f"{what} is {len(value)} characters; at most {limit}")
    if _CONTROL.search(value):
        raise UsageError(f"{what} contains control characters", hint="use plain text")
    return value
