"""Entra logs and policies: directoryAudits, signIns (both over the 30 days before the anchor, oldest first,
timestamps monotonic in the index) and conditional access policies."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from devstack.tenant import ids, vocab
from devstack.tenant.directory import FIRST_PARTY, ROLE_TEMPLATES
from devstack.tenant.layout import Layout
from devstack.tenant.people import person
from devstack.tenant.rng import iso7, iso_ms, number, random_guid, rng, spread

Record = dict[str, Any]

# (category, activity, operationType, target type)
AUDIT_ACTIVITIES = (
    ("UserManagement", "Add user", "Add", "User"),
    ("UserManagement", "Update user", "Update", "User"),
    ("UserManagement", "Delete user", "Delete", "User"),
    ("UserManagement", "Reset password (by admin)", "Update", "User"),
    ("GroupManagement", "Add member to group", "Assign", "Group"),
    ("GroupManagement", "Remove member from group", "Unassign", "Group"),
    ("GroupManagement", "Update group", "Update", "Group"),
    ("ApplicationManagement", "Update application – Certificates and secrets management ", "Update", "Application"),
    ("ApplicationManagement", "Consent to application", "Assign", "ServicePrincipal"),
    ("RoleManagement", "Add member to role", "Assign", "Role"),
    ("Policy", "Update conditional access policy", "Update", "Policy"),
)
# (displayName, state, grant controls, include apps, client app types)
CA_DESIGNS = (
    ("Require MFA for administrators", "enabled", ["mfa"], ["All"], ["all"]),
    ("Block legacy authentication", "enabled", ["block"], ["All"], ["exchangeActiveSync", "other"]),
    ("Require compliant device for Office 365", "enabledForReportingButNotEnforced", ["compliantDevice",
                                                                                       "domainJoinedDevice"],
     ["Office365"], ["browser", "mobileAppsAndDesktopClients"]),
    ("Require MFA for Azure management", "enabled", ["mfa"], ["797f4846-ba00-4fd7-ba43-dac1f8f63013"], ["all"]),
    ("Sign-in frequency — unmanaged devices", "disabled", ["mfa"], ["All"], ["browser"]),
    ("Require MFA for guests 🌍", "enabled", ["mfa"], ["All"], ["all"]),
    ("Block access outside allowed countries", "enabledForReportingButNotEnforced", ["block"], ["All"], ["all"]),
    ("Require terms of use for contractors", "disabled", ["mfa"], ["Office365"], ["all"]),
)


class Logs:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.seed = layout.seed

    def audit_id(self, k: int) -> str:
        code = "".join("ABCDEFGHJKLMNPQRSTUVWXYZ23456789"[(number(self.seed, "audit-code", k) >> (5 * j)) % 32]
                       for j in range(5))
        return f"Directory_{ids.guid(self.seed, 'audit', k)}_{code}_{10_000_000 + k}"

    def audit_index(self, audit_id: str) -> int | None:
        parts = audit_id.split("_")
        if len(parts) != 4 or parts[0] != "Directory" or not parts[3].isdigit():
            return None
        k = int(parts[3]) - 10_000_000
        return k if k >= 0 and self.audit_id(k) == audit_id else None

    def audit(self, k: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "audit", k)
        start, end = lay.log_window(30)
        when = spread(start, end, k, max(1, lay.sizes.directory_audits), r.random())
        category, activity, operation, target_type = AUDIT_ACTIVITIES[r.randrange(len(AUDIT_ACTIVITIES))]
        actor = person(lay, 0 if r.random() < 0.6 else r.randrange(lay.sizes.users))
        by_app = r.random() < 0.2
        target_user = person(lay, r.randrange(lay.sizes.users))
        failed = r.random() < 0.04
        if target_type == "User":
            target = {"id": target_user.id, "displayName": None, "type": "User",
                      "userPrincipalName": target_user.upn, "groupType": None,
                      "modifiedProperties": [
                          {"displayName": "AccountEnabled", "oldValue": "[false]", "newValue": "[true]"},
                          {"displayName": "Included Updated Properties", "oldValue": None,
                           "newValue": "\"AccountEnabled\""},
                      ] if operation == "Update" else []}
        elif target_type == "Group":
            g = r.randrange(max(1, lay.sizes.groups))
            target = {"id": lay.group_id(g), "displayName": None, "type": "Group", "userPrincipalName": None,
                      "groupType": "unifiedGroups" if lay.group_flavour(g) == "unified" else "azureAD",
                      "modifiedProperties": [{"displayName": "Group.DisplayName", "oldValue": None,
                                              "newValue": f"\"{vocab.GROUP_TOPICS[g % len(vocab.GROUP_TOPICS)]}\""}]}
        elif target_type == "Role":
            role = ROLE_TEMPLATES[r.randrange(len(ROLE_TEMPLATES))]
            target = {"id": role[0], "displayName": role[1], "type": "Role", "userPrincipalName": None,
                      "groupType": None, "modifiedProperties": []}
        else:
            target = {"id": ids.guid(self.seed, "servicePrincipal", r.randrange(max(1, lay.sizes.service_principals))),
                      "displayName": r.choice(vocab.APP_TOPICS), "type": target_type, "userPrincipalName": None,
                      "groupType": None, "modifiedProperties": [
                          {"displayName": "KeyDescription", "oldValue": "[]",
                           "newValue": "[\"[KeyIdentifier=0f6e..., KeyType=Password, KeyUsage=Verify, "
                                       "DisplayName=client secret]\"]"}]}
        app_id, app_name = FIRST_PARTY[r.randrange(len(FIRST_PARTY))]
        return {
            "id": self.audit_id(k),
            "category": category,
            "correlationId": random_guid(r),
            "result": "failure" if failed else "success",
            "resultReason": "Microsoft.Online.Workflows.ObjectAlreadyExistsException" if failed else "",
            "activityDisplayName": activity,
            "activityDateTime": iso7(when, r.randrange(10)),
            "loggedByService": "Core Directory",
            "operationType": operation,
            "initiatedBy": {
                "app": {"appId": app_id, "displayName": app_name, "servicePrincipalId": ids.guid(
                    self.seed, "servicePrincipal", 0), "servicePrincipalName": None},
                "user": None,
            } if by_app else {
                "app": None,
                "user": {"id": actor.id, "displayName": None, "userPrincipalName": actor.upn,
                         "ipAddress": f"{20 + r.randrange(200)}.{r.randrange(256)}.{r.randrange(256)}."
                                      f"{r.randrange(256)}"},
            },
            "targetResources": [target],
            "additionalDetails": [
                {"key": "User-Agent", "value": r.choice(vocab.USER_AGENTS)},
                {"key": "UserType", "value": "Guest" if target_user.guest else "Member"},
            ],
        }

    def sign_in_id(self, k: int) -> str:
        return ids.guid(self.seed, "signIn", k)

    def sign_in(self, k: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "signin", k)
        start, end = lay.log_window(30)
        when = spread(start, end, k, max(1, lay.sizes.sign_ins), r.random())
        who = person(lay, r.randrange(lay.sizes.users))
        app_id, app_name = FIRST_PARTY[r.randrange(len(FIRST_PARTY))]
        resource_id, resource_name = FIRST_PARTY[r.randrange(len(FIRST_PARTY))]
        city = who.city if r.random() < 0.9 else vocab.CITIES[r.randrange(len(vocab.CITIES))]
        failure = r.random() < 0.08
        error_code, reason = (50126, "Error validating credentials due to invalid username or password.") if failure \
            else (0, None)
        mfa_policy = CA_DESIGNS[0]
        interactive = r.random() < 0.7
        return {
            "id": self.sign_in_id(k),
            "createdDateTime": iso7(when, r.randrange(10)),
            "userDisplayName": who.display,
            "userPrincipalName": who.upn,
            "userId": who.id,
            "appId": app_id,
            "appDisplayName": app_name,
            "ipAddress": f"{20 + r.randrange(200)}.{r.randrange(256)}.{r.randrange(256)}.{r.randrange(256)}"
            if r.random() < 0.9 else f"2001:db8::{r.randrange(65535):x}",
            "clientAppUsed": r.choice(("Browser", "Mobile Apps and Desktop clients", "Exchange ActiveSync")),
            "correlationId": random_guid(r),
            "conditionalAccessStatus": "failure" if failure else r.choice(("success", "notApplied")),
            "isInteractive": interactive,
            "riskDetail": "none",
            "riskLevelAggregated": "none" if r.random() < 0.95 else "low",
            "riskLevelDuringSignIn": "none",
            "riskState": "none",
            "riskEventTypes": [],
            "riskEventTypes_v2": [],
            "resourceDisplayName": resource_name,
            "resourceId": resource_id,
            "homeTenantId": lay.tenant_id,
            "resourceTenantId": lay.tenant_id,
            "servicePrincipalId": None,
            "servicePrincipalName": None,
            "userAgent": r.choice(vocab.USER_AGENTS),
            "status": {"errorCode": error_code, "failureReason": reason,
                       "additionalDetails": "MFA requirement satisfied by claim in the token" if not failure and
                       interactive else None},
            "deviceDetail": {
                "deviceId": ids.guid(self.seed, "device", r.randrange(lay.sizes.users)) if r.random() < 0.4 else "",
                "displayName": None if r.random() < 0.6 else f"DESKTOP-{r.randrange(16**6):06X}",
                "operatingSystem": r.choice(vocab.OPERATING_SYSTEMS),
                "browser": r.choice(vocab.BROWSERS),
                "isCompliant": r.random() < 0.4,
                "isManaged": r.random() < 0.5,
                "trustType": r.choice((None, "Azure AD joined", "Hybrid Azure AD joined")),
            },
            "location": {"city": city[0], "state": city[1], "countryOrRegion": city[2],
                         "geoCoordinates": {"altitude": None, "latitude": city[6], "longitude": city[7]}},
            "appliedConditionalAccessPolicies": [{
                "id": self.ca_policy_id(0),
                "displayName": mfa_policy[0],
                "enforcedGrantControls": ["Mfa"],
                "enforcedSessionControls": [],
                "result": "failure" if failure else r.choice(("success", "notApplied")),
            }] if lay.sizes.conditional_access_policies else [],
        }

    def ca_policy_id(self, k: int) -> str:
        return ids.guid(self.seed, "caPolicy", k)

    def ca_policy(self, k: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "ca", k)
        name, state, controls, apps, clients = CA_DESIGNS[k % len(CA_DESIGNS)]
        if k >= len(CA_DESIGNS):
            name = f"{name} ({k // len(CA_DESIGNS) + 1})"
        created = lay.anchor - timedelta(days=300 - k * 5, minutes=r.randrange(1440))
        admins = [ROLE_TEMPLATES[0][0], ROLE_TEMPLATES[1][0]]
        guests = "guests" in name.lower()
        break_glass = lay.user_id(0)
        return {
            "id": self.ca_policy_id(k),
            "templateId": None,
            "displayName": name,
            "createdDateTime": iso_ms(created),
            "modifiedDateTime": iso_ms(created + timedelta(days=3)) if r.random() < 0.6 else None,
            "state": state,
            "sessionControls": {
                "disableResilienceDefaults": None,
                "applicationEnforcedRestrictions": None,
                "cloudAppSecurity": None,
                "persistentBrowser": {"isEnabled": True, "mode": "never"},
                "signInFrequency": {"value": 12, "type": "hours",
                                    "authenticationType": "primaryAndSecondaryAuthentication",
                                    "frequencyInterval": "timeBased", "isEnabled": True},
            } if "frequency" in name.lower() else None,
            "conditions": {
                "userRiskLevels": [],
                "signInRiskLevels": ["high", "medium"] if k % 5 == 4 else [],
                "clientAppTypes": clients,
                "servicePrincipalRiskLevels": [],
                "platforms": {"includePlatforms": ["all"], "excludePlatforms": ["iOS"]} if k % 3 == 2 else None,
                "locations": {"includeLocations": ["All"], "excludeLocations": ["AllTrusted"]}
                if "countries" in name else None,
                "devices": None,
                "clientApplications": None,
                "applications": {"includeApplications": apps, "excludeApplications": [], "includeUserActions": [],
                                 "includeAuthenticationContextClassReferences": [], "applicationFilter": None},
                "users": {
                    # the legacy guest selector: msgraph-sdk cannot parse the newer flags-enum string
                    # (guestOrExternalUserTypes: "internalGuest,b2bCollaborationGuest")
                    "includeUsers": ["GuestsOrExternalUsers"] if guests else [] if "administrators" in name
                    else ["All"],
                    "excludeUsers": [break_glass],
                    "includeGroups": [],
                    "excludeGroups": [lay.group_id(0)] if lay.sizes.groups and k % 2 else [],
                    "includeRoles": admins if "administrators" in name else [],
                    "excludeRoles": [],
                    "includeGuestsOrExternalUsers": None,
                    "excludeGuestsOrExternalUsers": None,
                },
            },
            "grantControls": {"operator": "OR", "builtInControls": controls, "customAuthenticationFactors": [],
                              "termsOfUse": [], "authenticationStrength": None},
        }
