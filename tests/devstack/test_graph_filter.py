"""The pure `$filter` parser/evaluator: the expressions Graph clients and the product send."""

from __future__ import annotations

import pytest

from devstack.graph.odata_filter import FilterError, matches, operators, parse_filter, root_properties

USER = {
    "id": "u1",
    "displayName": "Adele Vance",
    "accountEnabled": True,
    "createdDateTime": "2024-03-01T10:00:00Z",
    "assignedLicenses": [{"skuId": "c7df2760-2c81-4ef7-b578-5b5392b571df"}],
    "resourceProvisioningOptions": ["Team"],
    "from": {"emailAddress": {"address": "Adele@Contoso.com"}},
    "jobTitle": None,
    "start": {"dateTime": "2024-05-01T09:00:00.0000000", "timeZone": "UTC"},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("displayName eq 'adele vance'", True),  # directory string equality ignores case
        ("displayName ne 'Adele Vance'", False),
        ("startswith(displayName,'Ad')", True),
        ("startswith(displayName, 'Zz')", False),
        ("endswith(from/emailAddress/address,'@contoso.com')", True),
        ("accountEnabled eq true", True),
        ("accountEnabled eq false or jobTitle eq null", True),
        ("jobTitle eq null and not (displayName eq 'x')", True),
        ("createdDateTime ge 2024-01-01T00:00:00Z", True),
        ("createdDateTime lt 2024-03-01T10:00:00Z", False),
        ("createdDateTime le 2024-03-01T10:00:00Z and createdDateTime gt 2024-02-29", True),
        ("resourceProvisioningOptions/Any(x:x eq 'Team')", True),
        ("resourceProvisioningOptions/any(x:x eq 'Other')", False),
        ("assignedLicenses/any(l:l/skuId eq c7df2760-2c81-4ef7-b578-5b5392b571df)", True),
        ("assignedLicenses/all(l:l/skuId eq c7df2760-2c81-4ef7-b578-5b5392b571df)", True),
        ("id in ('u0', 'u1')", True),
        ("id in ('u0')", False),
        ("(id eq 'u1' or id eq 'u2') and displayName eq 'Adele Vance'", True),
        ("displayName eq 'O''Brien'", False),
        ("start/dateTime ge 2024-05-01T08:59:59Z", True),  # 7 fractional digits, no offset = UTC
    ],
)
def test_filters_evaluate_like_graph(text: str, expected: bool) -> None:
    assert matches(parse_filter(text), USER) is expected


def test_quotes_inside_strings_are_doubled() -> None:
    node = parse_filter("displayName eq 'O''Brien'")
    assert matches(node, {"displayName": "o'brien"})


@pytest.mark.parametrize(
    "text",
    ["", "displayName eq", "displayName eq 'x' and", "foo(displayName)", "startswith(displayName)", "(id eq 'a'",
     "id eq 'a' )", "displayName eq 'unterminated", "id in (displayName)"],
)
def test_malformed_filters_raise(text: str) -> None:
    with pytest.raises(FilterError):
        parse_filter(text)


def test_properties_and_operators_are_reported_for_endpoint_validation() -> None:
    node = parse_filter("receivedDateTime ge 2024-01-01T00:00:00Z and resourceProvisioningOptions/Any(x:x eq 'T')")
    assert root_properties(node) == {"receivedDateTime", "resourceProvisioningOptions"}
    assert operators(node) == {"ge", "and", "any", "eq"}
