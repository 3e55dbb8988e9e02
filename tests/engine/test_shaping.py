"""Pure shaping: first URLs, blob paths for hostile ids, record columns, certificate parsing, manifest sums."""

from __future__ import annotations

import base64
from urllib.parse import unquote

import orjson
import pytest
import trustme
from cryptography.hazmat.primitives.serialization import pkcs12
from hypothesis import given
from hypothesis import strategies as st

from shared.auth import CertificateFormatError, parse_certificate, token_roles
from shared.config import load_settings
from shared.contracts import PartitionResult, RunInfo
from shared.graph.query import partition_url
from shared.manifest import summarize
from shared.streams import CATALOG
from shared.writer import RecordShaper, partition_name, partition_path, snake
from tests.engine.test_config import BASE

RUN = RunInfo(run_id="r-20240101", tenant_id="11111111-1111-1111-1111-111111111111", trigger="local",
              started_at="2024-01-02T03:04:05Z", overrides={})


def test_partition_url_select_top_and_window() -> None:
    s = load_settings({**BASE, "SYNC_START_TIME": "2024-01-01T00:00:00Z", "SYNC_END_TIME": "2024-02-01T00:00:00Z",
                       "SYNC_STREAMS_CONFIG": '{"users": {"select": ["displayName", "mail"]}}'})
    assert unquote(partition_url(s, CATALOG["users"], None)) == \
        "https://graph.microsoft.com/v1.0/users?$select=id,displayName,mail&$top=999"
    url = unquote(partition_url(s, CATALOG["mail_messages"], "u/1"))
    assert url.startswith("https://graph.microsoft.com/v1.0/users/u/1/messages?$select=id,createdDateTime")
    assert "&$top=999&$filter=receivedDateTime ge 2024-01-01T00:00:00.000Z and receivedDateTime lt " \
           "2024-02-01T00:00:00.000Z" in url
    assert "%2F" in partition_url(s, CATALOG["mail_messages"], "u/1")
    chat = unquote(partition_url(s, CATALOG["chat_messages"], "19:abc@thread.v2"))
    assert "$top=50" in chat
    assert "lastModifiedDateTime gt 2023-12-31T23:59:59.999Z and lastModifiedDateTime lt" in chat
    assert chat.endswith("$orderby=lastModifiedDateTime desc")
    assert partition_url(s, CATALOG["channels"], "t1") == "https://graph.microsoft.com/v1.0/teams/t1/channels"
    assert " " not in partition_url(s, CATALOG["mail_messages"], "u1")


def test_query_values_cannot_add_parameters() -> None:
    from shared.graph.query import encode_query

    encoded = encode_query([("$filter", "displayName eq 'a&b=c#d%20' or x eq 'é'")])
    assert encoded.startswith("$filter=displayName%20eq%20'a%26b%3Dc%23d%2520'")
    assert "&" not in encoded and "#" not in encoded and " " not in encoded
    assert unquote(encoded) == "$filter=displayName eq 'a&b=c#d%20' or x eq 'é'"


HOSTILE = ["a/b", "../../etc/passwd", "x%2Fy", "AAMk+AGI=", "ünïcödé/👍", "", ".", "..", "a" * 1000, "a\\b",
           "AAMkAGI2TG93AAA=", "AAMkAGI2TG93AAA_"]


@pytest.mark.parametrize("parent_id", HOSTILE)
def test_partition_paths_are_safe_and_stay_in_their_folder(parent_id: str) -> None:
    path = partition_path("graph", RUN, "mail_messages", parent_id, "jsonl.gz")
    folder = "graph/11111111-1111-1111-1111-111111111111/mail_messages/ingest_date=2024-01-02/run=r-20240101/"
    assert path.startswith(folder)
    name = path[len(folder):]
    assert "/" not in name and "\\" not in name and not name.startswith(".")
    assert name.endswith(".jsonl.gz") and len(path) < 1024
    assert partition_path("graph", RUN, "mail_messages", parent_id, "jsonl.gz") == path  # deterministic


def test_partition_names_are_unique_for_similar_ids() -> None:
    names = {partition_name(p) for p in HOSTILE}
    assert len(names) == len(HOSTILE)
    assert partition_name(None) == "_all" and partition_name("_all") != "_all"


@given(st.text(min_size=1, max_size=200), st.text(min_size=1, max_size=200))
def test_partition_names_collide_only_for_equal_ids(a: str, b: str) -> None:
    assert (partition_name(a) == partition_name(b)) == (a == b)


def test_run_id_cannot_escape() -> None:
    with pytest.raises(ValueError, match="run_id"):
        partition_path("graph", {**RUN, "run_id": "../x"}, "users", None, "jsonl")


def test_snake_case_names() -> None:
    assert snake("userPrincipalName") == "user_principal_name"
    assert snake("@odata.type") == "odata_type"
    assert snake("iCalUId") == "i_cal_u_id"
    assert snake("id") == "id" and snake("already_snake") == "already_snake"
    assert snake("createdDateTime") == "created_date_time"


def test_record_shaper_injects_keys_and_snake_cases_nested() -> None:
    shaper = RecordShaper(tenant_id="t", extracted_at="2024-01-01T00:00:00.000Z", snake_case=True,
                          parent_key="user_id", parent_id="u1")
    out = shaper.shape({"id": "m1", "toRecipients": [{"emailAddress": {"address": "a@b"}}], "tenantId": "graph"})
    assert out == {"id": "m1", "to_recipients": [{"email_address": {"address": "a@b"}}], "tenant_id": "t",
                   "user_id": "u1", "_extracted_at": "2024-01-01T00:00:00.000Z"}
    plain = RecordShaper(tenant_id="t", extracted_at="x", snake_case=False)
    line = plain.jsonl([{"displayName": "Zoë"}, {"id": "2"}])
    rows = [orjson.loads(x) for x in line.splitlines()]
    assert rows[0] == {"displayName": "Zoë", "tenant_id": "t", "_extracted_at": "x"}
    assert "Zoë".encode() in line and len(rows) == 2


@pytest.fixture(scope="module")
def cert_pair() -> tuple[str, str]:
    ca = trustme.CA()
    leaf = ca.issue_cert("app.example")
    return leaf.private_key_pem.bytes().decode(), leaf.cert_chain_pems[0].bytes().decode()


def test_pem_certificate_in_either_order(cert_pair: tuple[str, str]) -> None:
    key, cert = cert_pair
    a = parse_certificate(key + cert)
    b = parse_certificate(cert + key)
    assert a.thumbprint == b.thumbprint and len(a.thumbprint) == 40 and a.thumbprint == a.thumbprint.upper()
    assert set(a.msal_credential()) == {"private_key", "thumbprint", "public_certificate"}


def test_pfx_certificate_as_key_vault_exposes_it(cert_pair: tuple[str, str]) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    key_pem, cert_pem = cert_pair
    key = serialization.load_pem_private_key(key_pem.encode(), None)
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    pfx = pkcs12.serialize_key_and_certificates(b"app", key, cert, None,  # type: ignore[arg-type]
                                                serialization.NoEncryption())
    parsed = parse_certificate(base64.b64encode(pfx).decode())
    assert parsed.thumbprint == parse_certificate(key_pem + cert_pem).thumbprint


def test_bad_certificate_secrets_never_echo_the_value(cert_pair: tuple[str, str]) -> None:
    _key, cert = cert_pair
    for bad in ("hunter2-not-a-cert", cert, "-----BEGIN GARBAGE-----hunter2"):
        with pytest.raises(CertificateFormatError) as info:
            parse_certificate(bad)
        assert "hunter2" not in str(info.value) and "BEGIN" not in str(info.value)


def test_token_roles_reads_the_claim_only() -> None:
    payload = base64.urlsafe_b64encode(orjson.dumps({"roles": ["User.Read.All"]})).rstrip(b"=").decode()
    assert token_roles(f"h.{payload}.s") == frozenset({"User.Read.All"})
    assert token_roles("opaque") is None


def result(stream: str, status: str, records: int = 0) -> PartitionResult:
    return PartitionResult(stream=stream, parent_id=None, status=status, kind="full",  # type: ignore[typeddict-item]
                           records=records, pages=1, requests=2, retries=1, throttled=0, bytes=10, duration_s=0.1,
                           blob_path=None)


def test_manifest_summary_counts() -> None:
    s = summarize(RUN, [result("users", "ok", 5), result("mail_messages", "skipped"),
                        result("mail_messages", "ok", 3)], "p")
    assert s["status"] == "succeeded" and s["success_marker"] and s["records"] == 8 and s["partitions"] == 3
    assert s["streams"]["mail_messages"]["skipped"] == 1 and s["streams"]["mail_messages"]["records"] == 3
    failed = summarize(RUN, [result("users", "failed")], "p")
    assert failed["status"] == "failed" and not failed["success_marker"]
