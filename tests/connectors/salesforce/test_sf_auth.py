"""Login flows on the wire (JWT, password, client credentials) and secret hygiene."""

from __future__ import annotations

import base64
import logging
import traceback
from urllib.parse import parse_qs

import jwt
import pytest
import responses
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from auditor.errors import ConnectorError
from auditor.secrets import install_log_redaction
from connectors.salesforce.connector import SalesforceConnector
from tests.connectors.salesforce.fake_org import FIELD_OPTIONS, FakeOrg, login_reply

TOKEN_OK = login_reply("oauth_token_ok.json")


@pytest.fixture(scope="module")
def rsa_key() -> tuple[str, rsa.RSAPublicKey]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return pem, key.public_key()


def connector(env: dict[str, str], **options: object) -> SalesforceConnector:
    opts = SalesforceConnector.Options.model_validate({"name": "acme", **FIELD_OPTIONS, **options})
    return SalesforceConnector(opts, env=env, sleep=lambda s: None)


JWT_OPTS = {
    "auth": "jwt",
    "username": "integration@acme.example",
    "consumer_key_env": "SF_CONSUMER_KEY",
    "private_key_env": "SF_PRIVATE_KEY",
}


@pytest.mark.parametrize(
    ("domain", "audience"),
    [("login", "https://login.salesforce.com"), ("test", "https://test.salesforce.com")],
)
def test_jwt_bearer_login(rsps, rsa_key, domain, audience) -> None:
    pem, public = rsa_key
    FakeOrg(rsps)
    token = rsps.add(
        responses.POST,
        f"{audience}/services/oauth2/token",
        body=TOKEN_OK,
        content_type="application/json",
    )
    snap = connector(
        {"SF_CONSUMER_KEY": "3MVG9ConsumerKey", "SF_PRIVATE_KEY": pem}, **JWT_OPTS, domain=domain
    ).pull()
    assert token.call_count == 1
    form = parse_qs(rsps.calls[0].request.body)
    assert form["grant_type"] == ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
    claims = jwt.decode(form["assertion"][0], public, algorithms=["RS256"], audience=audience)
    assert (claims["iss"], claims["sub"]) == ("3MVG9ConsumerKey", "integration@acme.example")
    assert rsps.calls[1].request.headers["Authorization"] == (
        "Bearer 00D8d000000AcmE!AQ4AQOAuthAccessTokenForTests"
    )
    assert snap.opportunities["url"][0] == (
        "https://acme.my.salesforce.com/lightning/r/Opportunity/0068d00000OpA01AAA/view"
    )
    usage = snap.meta.api_usage  # the token request is a sign-in, not an API call
    assert (usage.logins, usage.calls) == (1, 8)
    assert usage.calls_by_endpoint == {"GET /query": 7, "GET /sobjects/Opportunity/describe": 1}


def test_jwt_key_from_file(rsps, rsa_key, tmp_path) -> None:
    pem, _ = rsa_key
    (tmp_path / "sf.key").write_text(pem)
    FakeOrg(rsps)
    rsps.add(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        body=TOKEN_OK,
        content_type="application/json",
    )
    opts = SalesforceConnector.Options.model_validate(
        {**JWT_OPTS, "private_key_env": None, "private_key_file": "sf.key", **FIELD_OPTIONS}
    )
    conn = SalesforceConnector(opts, base_dir=tmp_path, env={"SF_CONSUMER_KEY": "3MVG9Key"})
    assert conn.check()["unmapped_stages"] == ["Discovery Call"]


def test_password_login_posts_soap(rsps) -> None:
    FakeOrg(rsps)
    login = rsps.add(
        responses.POST,
        "https://test.salesforce.com/services/Soap/u/59.0",
        body=login_reply("soap_login_ok.xml"),
        content_type="text/xml",
    )
    conn = connector(
        {"SF_PASSWORD": "pa55word", "SF_TOKEN": "T0KEN1234"},
        auth="password",
        username="ann.lee@acme.example",
        password_env="SF_PASSWORD",
        security_token_env="SF_TOKEN",
        domain="test",
    )
    assert conn.check()["api_calls"] == 2  # stage metadata + describe
    body = login.calls[0].request.body
    body = body.decode() if isinstance(body, bytes) else body
    assert "<n1:username>ann.lee@acme.example</n1:username>" in body
    assert rsps.calls[1].request.headers["Authorization"] == (
        "Bearer 00D8d000000AcmE!AQ4AQSoapSessionTokenForTests"
    )


def test_client_credentials_login_uses_my_domain(rsps) -> None:
    FakeOrg(rsps)
    token = rsps.add(
        responses.POST,
        "https://acme.my.salesforce.com/services/oauth2/token",
        body=TOKEN_OK,
        content_type="application/json",
    )
    connector(
        {"SF_KEY": "3MVG9Key", "SF_SECRET": "S3cretValue"},
        auth="client_credentials",
        consumer_key_env="SF_KEY",
        consumer_secret_env="SF_SECRET",
        domain="acme.my",
    ).check()
    req = token.calls[0].request
    assert parse_qs(req.body)["grant_type"] == ["client_credentials"]
    assert (
        req.headers["Authorization"]
        == "Basic " + base64.b64encode(b"3MVG9Key:S3cretValue").decode()
    )


def test_soap_login_fault_is_not_retried(rsps) -> None:
    login = rsps.add(
        responses.POST,
        "https://login.salesforce.com/services/Soap/u/59.0",
        body=login_reply("soap_login_fault.xml"),
        status=500,
        content_type="text/xml",
    )
    with pytest.raises(ConnectorError) as err:
        connector(
            {"P": "pa55word", "T": "T0KEN1234"},
            auth="password",
            username="a@b.c",
            password_env="P",
            security_token_env="T",
        ).pull()
    assert login.call_count == 1  # retrying a bad password only locks the user out
    assert str(err.value) == (
        "Salesforce login (password, domain 'login') was refused: INVALID_LOGIN: Invalid "
        "username, password, security token; or user locked out."
    )


SECRETS = {
    "SF_PASSWORD": "Pa55-word-4711",
    "SF_TOKEN": "TokEn9876xyz",
    "SF_KEY": "3MVG9ConsumerKeyLeak",
    "SF_SECRET": "ConsumerSecret5566",
}


def _echo_fault(secrets: list[str]) -> str:
    """A login fault whose message repeats what was sent: the worst case for leaks."""
    fault = login_reply("soap_login_fault.xml")
    return fault.replace(
        "user locked out.</sf:exceptionMessage>",
        f"user locked out. Got {' / '.join(secrets)}</sf:exceptionMessage>",
    )


def _everything_shown(exc: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join(
        [
            str(exc),
            repr(exc),
            *traceback.format_exception(exc),
            caplog.text,
            *(r.getMessage() for r in caplog.records),
        ]
    )


def test_failing_logins_never_show_password_token_or_key(rsps, rsa_key, caplog) -> None:
    pem, _ = rsa_key
    key_lines = [ln for ln in pem.splitlines() if "-----" not in ln]
    install_log_redaction()
    caplog.set_level(logging.DEBUG)
    shown: list[str] = []

    # password + token: the fault echoes both (and the flow is retried on a network error)
    rsps.add(
        responses.POST, "https://login.salesforce.com/services/Soap/u/59.0", body=requests_error()
    )
    rsps.add(
        responses.POST,
        "https://login.salesforce.com/services/Soap/u/59.0",
        body=_echo_fault([SECRETS["SF_PASSWORD"], SECRETS["SF_TOKEN"]]),
        status=500,
        content_type="text/xml",
    )
    with pytest.raises(ConnectorError) as err:
        connector(
            SECRETS,
            auth="password",
            username="a@b.c",
            password_env="SF_PASSWORD",
            security_token_env="SF_TOKEN",
        ).pull()
    shown.append(_everything_shown(err.value, caplog))
    assert "INVALID_LOGIN" in str(err.value) and "***" in str(err.value)

    # JWT: a token endpoint error that echoes the key material
    rsps.add(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        status=400,
        json={"error": "invalid_grant", "error_description": f"bad key {key_lines[3]}"},
    )
    with pytest.raises(ConnectorError) as err:
        connector(
            {"SF_KEY": SECRETS["SF_KEY"], "SF_PEM": pem},
            auth="jwt",
            username="a@b.c",
            consumer_key_env="SF_KEY",
            private_key_env="SF_PEM",
        ).pull()
    shown.append(_everything_shown(err.value, caplog))

    # JWT with a broken key: the signing library's error must not carry it either
    broken = pem.replace(key_lines[5], key_lines[5][::-1])
    with pytest.raises(ConnectorError) as err:
        connector(
            {"SF_KEY": SECRETS["SF_KEY"], "SF_PEM": broken},
            auth="jwt",
            username="a@b.c",
            consumer_key_env="SF_KEY",
            private_key_env="SF_PEM",
        ).pull()
    shown.append(_everything_shown(err.value, caplog))

    # client credentials: 401 echoing the secret
    rsps.add(
        responses.POST,
        "https://acme.my.salesforce.com/services/oauth2/token",
        status=401,
        json={"error": "invalid_client", "error_description": SECRETS["SF_SECRET"]},
    )
    with pytest.raises(ConnectorError) as err:
        connector(
            SECRETS,
            auth="client_credentials",
            consumer_key_env="SF_KEY",
            consumer_secret_env="SF_SECRET",
            domain="acme.my",
        ).pull()
    shown.append(_everything_shown(err.value, caplog))

    text = "\n".join(shown)
    assert "retry 1/4" in text  # the logs were really captured
    for secret in [*SECRETS.values(), pem, *key_lines]:
        assert secret not in text


def requests_error() -> Exception:
    import requests

    return requests.exceptions.ConnectionError("connection reset by peer")


def test_unapproved_app_is_clear_and_its_warning_redacted(rsps, rsa_key, caplog, recwarn) -> None:
    pem, _ = rsa_key
    rsps.add(
        responses.POST,
        "https://login.salesforce.com/services/oauth2/token",
        status=400,
        body=login_reply("oauth_token_error.json"),
        content_type="application/json",
    )
    key = "3MVG9UnapprovedAppKey"
    with pytest.raises(ConnectorError) as err:
        connector({"SF_CONSUMER_KEY": key, "SF_PRIVATE_KEY": pem}, **JWT_OPTS).pull()
    assert str(err.value) == (
        "Salesforce login (jwt, domain 'login') was refused: "
        "invalid_grant: user hasn't approved this consumer"
    )
    logged = [r.getMessage() for r in caplog.records if r.name.endswith("transport")]
    assert len(logged) == 1 and "client_id=***" in logged[0]
    assert key not in caplog.text and not [w for w in recwarn if key in str(w.message)]
