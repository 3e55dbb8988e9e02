"""Entra directory records: users, groups, applications, service principals, directory roles and templates.

Property names and shapes follow the Graph v1.0 resources (checked against msgraph-sdk's models by the fidelity
tests). Values that Graph returns as null in cloud-only tenants stay null; a share of users are synced from
on-premises so the onPremises* properties carry values too.
"""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

from devstack.tenant import ids, vocab
from devstack.tenant.layout import Layout
from devstack.tenant.people import person
from devstack.tenant.rng import digest, iso, number, random_guid, rng, spread

Record = dict[str, Any]

E5_SKU = "06ebc4ee-1bb5-47dd-8120-11324bc54e06"  # Microsoft 365 E5
E3_SKU = "05e9a617-0261-4cee-bb44-138d3ef5d965"  # Microsoft 365 E3
EXCHANGE_PLAN = "efb87545-963c-4e0d-99df-69c6916d9eb0"
SHAREPOINT_PLAN = "5dbe027f-2339-4123-9542-606e4d348a72"
TEAMS_PLAN = "57ff2da0-773e-42df-b2af-ffb7a2317929"
GRAPH_APP_ID = "00000003-0000-0000-c000-000000000000"
MICROSOFT_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"

# Graph application permissions (app role ids are the real, documented ones).
GRAPH_APP_ROLES: tuple[tuple[str, str], ...] = (
    ("df021288-bdef-4463-88db-98f22de89214", "User.Read.All"),
    ("5b567255-7703-4780-807c-7be8301ae99b", "Group.Read.All"),
    ("98830695-27a2-44f7-8c18-0c3ebc9698f6", "GroupMember.Read.All"),
    ("7ab1d382-f21e-4acd-a863-ba3e13f7da61", "Directory.Read.All"),
    ("9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30", "Application.Read.All"),
    ("810c84a8-4a9e-49e6-bf7d-12d183f40d01", "Mail.Read"),
    ("798ee544-9d2d-430c-a058-570e29e34338", "Calendars.Read"),
    ("089fe4d0-434a-44c5-8827-41ba8a0b17f5", "Contacts.Read"),
    ("01d4889c-1287-42c6-ac1f-5d1e02578ef6", "Files.Read.All"),
    ("6b7d71aa-70aa-4810-a8d9-5d9fb2830017", "Chat.Read.All"),
    ("b0afded3-3588-46d8-8b3d-9842eff778da", "AuditLog.Read.All"),
    ("246dd0d5-5bd0-4def-940b-0421030a5b68", "Policy.Read.All"),
    ("483bed4a-2ad3-4361-a73b-c83ccdbdc53c", "RoleManagement.Read.Directory"),
)

# Microsoft first-party service principals present in every tenant: (appId, displayName).
FIRST_PARTY: tuple[tuple[str, str], ...] = (
    (GRAPH_APP_ID, "Microsoft Graph"),
    ("00000002-0000-0ff1-ce00-000000000000", "Office 365 Exchange Online"),
    ("00000003-0000-0ff1-ce00-000000000000", "Office 365 SharePoint Online"),
    ("1fec8e78-bce4-4aaf-ab1b-5451cc387264", "Microsoft Teams"),
    ("c44b4083-3bb0-49c1-b47d-974e53cbdf3c", "Azure Portal"),
    ("d3590ed6-52b3-4102-aeff-aad2292ab01c", "Microsoft Office"),
    ("cfa8b339-82a2-471a-a3c9-0fc0be7a4093", "Azure Key Vault"),
    ("e406a681-f3d4-42a8-90b6-c2b029497af1", "Azure Storage"),
    ("0000000a-0000-0000-c000-000000000000", "Microsoft Intune"),
    ("00000009-0000-0000-c000-000000000000", "Power BI Service"),
    ("00000002-0000-0000-c000-000000000000", "Windows Azure Active Directory"),
)

# Built-in Entra role templates (real template ids): (id, displayName, description).
ROLE_TEMPLATES: tuple[tuple[str, str, str], ...] = (
    ("62e90394-69f5-4237-9190-012177145e10", "Global Administrator",
     "Can manage all aspects of Microsoft Entra ID and Microsoft services that use Microsoft Entra identities."),
    ("fe930be7-5e62-47db-91af-98c3a49a38b1", "User Administrator",
     "Can manage all aspects of users and groups, including resetting passwords for limited admins."),
    ("29232cdf-9323-42fd-ade2-1d097af3e4de", "Exchange Administrator",
     "Can manage all aspects of the Exchange product."),
    ("f28a1f50-f6e7-4571-818b-6a12f2af6b6c", "SharePoint Administrator",
     "Can manage all aspects of the SharePoint service."),
    ("69091246-20e8-4a56-aa4d-066075b2a7a8", "Teams Administrator", "Can manage the Microsoft Teams service."),
    ("194ae4cb-b126-40b2-bd5b-6091b380977d", "Security Administrator",
     "Can read security information and reports, and manage configuration in Microsoft Entra ID and Office 365."),
    ("f2ef992c-3afb-46b9-b7cf-a126ee74c451", "Global Reader",
     "Can read everything that a Global Administrator can, but not update anything."),
    ("729827e3-9c14-49f7-bb1b-9608f156bbb8", "Helpdesk Administrator",
     "Can reset passwords for non-administrators and Helpdesk Administrators."),
    ("b0f54661-2d74-4c50-afa3-1ec803f12efe", "Billing Administrator",
     "Can perform common billing related tasks like updating payment information."),
    ("9b895d92-2cd3-44c7-9d02-a6ac2d5ea5c3", "Application Administrator",
     "Can create and manage all aspects of app registrations and enterprise apps."),
    ("158c047a-c907-4556-b7ef-446551a6b5f7", "Cloud Application Administrator",
     "Can create and manage all aspects of app registrations and enterprise apps except App Proxy."),
    ("fdd7a751-b60b-444a-984c-02652fe8fa1c", "Groups Administrator",
     "Members of this role can create/manage groups, create/manage groups settings like naming and expiration "
     "policies, and view groups activity and audit reports."),
    ("88d8e3e3-8f55-4a1e-953a-9b9898b8876b", "Directory Readers", "Can read basic directory information."),
    ("5d6b6bb7-de71-4623-b4af-96380a352509", "Security Reader",
     "Can read security information and reports in Microsoft Entra ID and Office 365."),
    ("17315797-102d-40b4-93e0-432062caca18", "Compliance Administrator",
     "Can read and manage compliance configuration and reports in Microsoft Entra ID and Microsoft 365."),
    ("e8611ab8-c189-46e8-94e1-60213ab1f814", "Privileged Role Administrator",
     "Can manage role assignments in Microsoft Entra ID, and all aspects of Privileged Identity Management."),
    ("4a5d8f65-41da-4de4-8968-e035b65339cf", "Reports Reader", "Can read sign-in and audit reports."),
    ("b1be1c3e-b65d-4f19-8427-f6fa0d97feb9", "Conditional Access Administrator",
     "Can manage Conditional Access capabilities."),
    ("3a2c62db-5318-420d-8d74-23affee5d9d5", "Intune Administrator", "Can manage all aspects of the Intune product."),
    ("c4e39bd9-1100-46d3-8c65-fb160da0071f", "Authentication Administrator",
     "Can access to view, set and reset authentication method information for any non-admin user."),
    ("95e79109-95c0-4d8e-aee3-d01accf2d47b", "Guest Inviter",
     "Can invite guest users independent of the 'members can invite guests' setting."),
    ("d29b2b05-8046-44ba-8758-1e26182fcf32", "Directory Synchronization Accounts",
     "Only used by Microsoft Entra Connect service."),
)


def _sid(layout: Layout, kind: str, i: int) -> str:
    raw = digest(layout.seed, "sid", kind, i)
    parts = [int.from_bytes(raw[k : k + 4], "little") for k in range(0, 16, 4)]
    return "S-1-12-1-" + "-".join(str(p) for p in parts)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


class Directory:
    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.seed = layout.seed

    # --- users -------------------------------------------------------------------------------------------------
    def user(self, i: int) -> Record:
        lay = self.layout
        p = person(lay, i)
        r = rng(self.seed, "user", i)
        city, state, _, country, postal, street, _, _, phone, usage, lang = p.city
        created = spread(lay.anchor - timedelta(days=5 * 365), lay.anchor - timedelta(days=30), i,
                         lay.sizes.users, r.random())
        created_iso = iso(created)
        licensed = lay.is_licensed(i)
        synced = not p.guest and i != 0 and r.random() < 0.2
        sku = E5_SKU if i % 3 == 0 else E3_SKU
        plans = [(EXCHANGE_PLAN, "exchange"), (SHAREPOINT_PLAN, "SharePoint"), (TEAMS_PLAN, "TeamspaceAPI")]
        last_sign_in = lay.anchor - timedelta(minutes=r.randrange(10, 60 * 24 * 40))
        disabled = not p.guest and i != 0 and r.random() < 0.03
        request_id = random_guid(r)
        user: Record = {
            "id": p.id,
            "deletedDateTime": None,
            "accountEnabled": not disabled,
            "ageGroup": None,
            "assignedLicenses": [{"disabledPlans": [], "skuId": sku}] if licensed else [],
            "assignedPlans": [
                {"assignedDateTime": created_iso, "capabilityStatus": "Enabled", "service": svc, "servicePlanId": pid}
                for pid, svc in plans
            ] if licensed else [],
            "authorizationInfo": {"certificateUserIds": []},
            "businessPhones": [] if p.guest else [f"{phone} 555 {r.randrange(1000, 9999)}"],
            "city": None if p.guest else city,
            "companyName": None if p.guest else "Contoso",
            "consentProvidedForMinor": None,
            "country": None if p.guest else country,
            "createdDateTime": created_iso,
            "creationType": "Invitation" if p.guest else None,
            "department": None if p.guest else vocab.DEPARTMENTS[r.randrange(len(vocab.DEPARTMENTS))],
            "displayName": p.display,
            "employeeHireDate": None if p.guest else iso(created.replace(hour=0, minute=0, second=0)),
            "employeeLeaveDateTime": None,
            "employeeId": None if p.guest else f"{100000 + i}",
            "employeeOrgData": None if p.guest else {
                "costCenter": f"CC-{r.randrange(100, 999)}",
                "division": r.choice(("Commercial", "Public Sector", "R&D")),
            },
            "employeeType": None if p.guest else r.choice(("Employee", "Employee", "Contractor")),
            "externalUserState": ("Accepted" if i % 2 else "PendingAcceptance") if p.guest else None,
            "externalUserStateChangeDateTime": created_iso if p.guest else None,
            "faxNumber": None,
            "givenName": p.given,
            "identities": [{"signInType": "userPrincipalName", "issuer": lay.default_domain, "issuerAssignedId": p.upn}]
            if not p.guest else [{"signInType": "federated", "issuer": "ExternalAzureAD", "issuerAssignedId": None}],
            "imAddresses": [] if p.guest or not licensed else [p.upn.lower()],
            "isResourceAccount": None,
            "jobTitle": None if p.guest else vocab.JOB_TITLES[r.randrange(len(vocab.JOB_TITLES))],
            "lastPasswordChangeDateTime": iso(created + timedelta(days=r.randrange(0, 25))),
            "legalAgeGroupClassification": None,
            "licenseAssignmentStates": [{
                "assignedByGroup": None, "disabledPlans": [], "error": "None", "lastUpdatedDateTime": created_iso,
                "skuId": sku, "state": "Active",
            }] if licensed else [],
            "mail": p.mail if (licensed or p.guest) else None,
            "mailNickname": p.nickname if not p.guest else p.upn.split("#EXT#")[0],
            "mobilePhone": None if p.guest or r.random() < 0.4
            else f"{phone} {r.randrange(100, 999)} {r.randrange(1000, 9999)}",
            "officeLocation": None if p.guest else r.choice(vocab.OFFICES),
            "onPremisesDistinguishedName": f"CN={p.display},OU=Users,DC=corp,DC=contoso,DC=com" if synced else None,
            "onPremisesDomainName": "corp.contoso.com" if synced else None,
            "onPremisesExtensionAttributes": {f"extensionAttribute{k}": (f"EA{k}-{i}" if synced and k <= 2 else None)
                                              for k in range(1, 16)},
            "onPremisesImmutableId": _b64(digest(self.seed, "immutable", i)) if synced else None,
            "onPremisesLastSyncDateTime": iso(lay.anchor - timedelta(minutes=r.randrange(5, 120))) if synced else None,
            "onPremisesProvisioningErrors": [],
            "onPremisesSamAccountName": p.nickname[:20] if synced else None,
            "onPremisesSecurityIdentifier": f"S-1-5-21-1004336348-1177238915-682003330-{1100 + i}" if synced else None,
            "onPremisesSyncEnabled": True if synced else None,
            "onPremisesUserPrincipalName": p.upn.replace(lay.default_domain, "corp.contoso.com") if synced else None,
            "otherMails": [f"{p.nickname.lower()}@outlook.com"] if r.random() < 0.1 else [],
            "passwordPolicies": "DisablePasswordExpiration" if r.random() < 0.3 else None,
            # the password itself is never returned; cloud-only accounts expose the policy flags
            "passwordProfile": None if p.guest or synced else {
                "password": None, "forceChangePasswordNextSignIn": r.random() < 0.1,
                "forceChangePasswordNextSignInWithMfa": False},
            "postalCode": None if p.guest else postal,
            "preferredDataLocation": None,
            "preferredLanguage": None if p.guest else lang,
            "provisionedPlans": [
                {"capabilityStatus": "Enabled", "provisioningStatus": "Success", "service": svc} for _, svc in plans
            ] if licensed else [],
            "proxyAddresses": [f"SMTP:{p.mail}", f"smtp:{p.nickname}@contoso.mail.onmicrosoft.com"]
            if licensed else [],
            "securityIdentifier": _sid(lay, "user", i),
            "serviceProvisioningErrors": [],
            "showInAddressList": None,
            "signInActivity": {
                "lastSignInDateTime": iso(last_sign_in),
                "lastSignInRequestId": request_id,
                "lastNonInteractiveSignInDateTime": iso(last_sign_in + timedelta(minutes=7)),
                "lastNonInteractiveSignInRequestId": random_guid(r),
                "lastSuccessfulSignInDateTime": iso(last_sign_in),
                "lastSuccessfulSignInRequestId": request_id,
            } if not disabled else None,
            "signInSessionsValidFromDateTime": created_iso,
            "state": None if p.guest else state,
            "streetAddress": None if p.guest else street,
            "surname": p.surname,
            "usageLocation": usage if licensed else None,
            "userPrincipalName": p.upn,
            "userType": "Guest" if p.guest else "Member",
        }
        return user

    # --- groups ------------------------------------------------------------------------------------------------
    def group(self, g: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "group", g)
        flavour = lay.group_flavour(g)
        topic = vocab.GROUP_TOPICS[g % len(vocab.GROUP_TOPICS)]
        name = topic if g < len(vocab.GROUP_TOPICS) else f"{topic} {g // len(vocab.GROUP_TOPICS) + 1}"
        if lay.is_all_company(g):
            topic = name = "All Company"
        nick = vocab.fold(name) or "group"
        nick = f"{nick}{g}"
        created = spread(lay.anchor - timedelta(days=4 * 365), lay.anchor - timedelta(days=20), g,
                         max(1, lay.sizes.groups), r.random())
        unified = flavour == "unified"
        mail_enabled = flavour in ("unified", "mail_security", "distribution")
        dynamic = flavour == "security" and r.random() < 0.25
        group_types = ["Unified"] if unified else (["DynamicMembership"] if dynamic else [])
        mail = f"{nick}@{lay.default_domain}" if mail_enabled else None
        return {
            "id": lay.group_id(g),
            "deletedDateTime": None,
            "classification": None,
            "createdDateTime": iso(created),
            "description": f"{name} — {'team workspace' if lay.is_team(g) else 'group'} for {topic.lower()}",
            "displayName": name,
            "expirationDateTime": None,
            "groupTypes": group_types,
            "isAssignableToRole": None if unified else False,
            "mail": mail,
            "mailEnabled": mail_enabled,
            "mailNickname": nick,
            "membershipRule": 'user.department -eq "Sales & Marketing"' if dynamic else None,
            "membershipRuleProcessingState": "On" if dynamic else None,
            "onPremisesDomainName": None,
            "onPremisesLastSyncDateTime": None,
            "onPremisesNetBiosName": None,
            "onPremisesProvisioningErrors": [],
            "onPremisesSamAccountName": None,
            "onPremisesSecurityIdentifier": None,
            "onPremisesSyncEnabled": None,
            "preferredDataLocation": None,
            "preferredLanguage": None,
            "proxyAddresses": [f"SMTP:{mail}", f"SPO:SPO_{ids.guid(self.seed, 'spo', g)}@SPO_{lay.tenant_id}"]
            if unified and mail else ([f"SMTP:{mail}"] if mail else []),
            "renewedDateTime": iso(created),
            "resourceBehaviorOptions": ["WelcomeEmailDisabled"] if lay.is_team(g) else [],
            "resourceProvisioningOptions": ["Team"] if lay.is_team(g) else [],
            "securityEnabled": flavour != "distribution",
            "securityIdentifier": _sid(lay, "group", g),
            "serviceProvisioningErrors": [],
            "theme": None,
            "visibility": ("Private" if r.random() < 0.3 else "Public") if unified else None,
        }

    # --- applications and service principals -------------------------------------------------------------------
    def app_id(self, a: int) -> str:
        return ids.guid(self.seed, "appId", a)

    def _credentials(self, kind: str, a: int, created_iso: str) -> tuple[list[Record], list[Record]]:
        r = rng(self.seed, "creds", kind, a)
        keys: list[Record] = []
        secrets: list[Record] = []
        start = created_iso
        year = int(start[:4])
        if r.random() < 0.6:
            keys.append({
                "customKeyIdentifier": _b64(digest(self.seed, "thumb", kind, a, size=20)),
                "displayName": f"CN={vocab.APP_TOPICS[a % len(vocab.APP_TOPICS)]}",
                "endDateTime": f"{year + 1}{start[4:]}",
                "key": None,
                "keyId": ids.guid(self.seed, f"{kind}-key", a),
                "startDateTime": start,
                "type": "AsymmetricX509Cert",
                "usage": "Verify",
            })
        if r.random() < 0.8:
            secrets.append({
                "customKeyIdentifier": None,
                "displayName": "client secret" if r.random() < 0.5 else "CI/CD — rotation 🔑",
                "endDateTime": f"{year + 2}{start[4:]}",
                "hint": r.choice(("abc", "Q~x", "7Fd", "kL_")),
                "keyId": ids.guid(self.seed, f"{kind}-secret", a),
                "secretText": None,
                "startDateTime": start,
            })
        return keys, secrets

    def _app_roles(self, a: int) -> list[Record]:
        if a % 2:
            return []
        return [{
            "allowedMemberTypes": ["Application"] if k == 0 else ["User", "Application"],
            "description": "Read every record the service exposes" if k == 0 else "Approve requests as a manager",
            "displayName": "Read all" if k == 0 else "Approver",
            "id": ids.guid(self.seed, "approle", a * 8 + k),
            "isEnabled": True,
            "origin": "Application",
            "value": "Data.Read.All" if k == 0 else "Requests.Approve",
        } for k in range(2)]

    def _scopes(self, a: int) -> list[Record]:
        if a % 3:
            return []
        return [{
            "adminConsentDescription": "Allow the application to access the API on behalf of the signed-in user.",
            "adminConsentDisplayName": "Access the API",
            "id": ids.guid(self.seed, "scope", a),
            "isEnabled": True,
            "origin": None,
            "type": "User",
            "userConsentDescription": "Permet à l'application d'accéder à l'API en votre nom.",
            "userConsentDisplayName": "Accéder à l'API",
            "value": "user_impersonation",
        }]

    def application(self, a: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "app", a)
        name = vocab.APP_TOPICS[a % len(vocab.APP_TOPICS)]
        if a >= len(vocab.APP_TOPICS):
            name = f"{name} {a // len(vocab.APP_TOPICS) + 1}"
        created = iso(spread(lay.anchor - timedelta(days=3 * 365), lay.anchor - timedelta(days=10), a,
                             max(1, lay.sizes.applications), r.random()))
        keys, secrets = self._credentials("app", a, created)
        app_id = self.app_id(a)
        graph_roles = r.sample(GRAPH_APP_ROLES, k=min(len(GRAPH_APP_ROLES), 1 + r.randrange(4)))
        spa = a % 4 == 1
        return {
            "id": ids.guid(self.seed, "application", a),
            "deletedDateTime": None,
            "addIns": [],
            "api": {
                "acceptMappedClaims": None,
                "knownClientApplications": [],
                "oauth2PermissionScopes": self._scopes(a),
                "preAuthorizedApplications": [],
                "requestedAccessTokenVersion": 2 if a % 2 else None,
            },
            "appId": app_id,
            "applicationTemplateId": None,
            "appRoles": self._app_roles(a),
            "certification": None,
            "createdDateTime": created,
            "defaultRedirectUri": None,
            "description": None if a % 2 else f"{name} (line-of-business)",
            "disabledByMicrosoftStatus": None,
            "displayName": name,
            "groupMembershipClaims": "SecurityGroup" if a % 5 == 0 else None,
            "identifierUris": [f"api://{app_id}"] if not a % 3 else [],
            "info": {"logoUrl": None, "marketingUrl": None, "privacyStatementUrl": None, "supportUrl": None,
                     "termsOfServiceUrl": None},
            "isDeviceOnlyAuthSupported": None,
            "isFallbackPublicClient": None,
            "keyCredentials": keys,
            "notes": None,
            "optionalClaims": None if a % 2 else {
                "accessToken": [], "idToken": [{"additionalProperties": [], "essential": False, "name": "email",
                                                 "source": None}], "saml2Token": [],
            },
            "parentalControlSettings": {"countriesBlockedForMinors": [], "legalAgeGroupRule": "Allow"},
            "passwordCredentials": secrets,
            "publicClient": {"redirectUris": ["https://login.microsoftonline.com/common/oauth2/nativeclient"]
                             if a % 4 == 2 else []},
            "publisherDomain": lay.default_domain,
            "requiredResourceAccess": [{
                "resourceAppId": GRAPH_APP_ID,
                "resourceAccess": [{"id": role_id, "type": "Role"} for role_id, _ in graph_roles],
            }],
            "samlMetadataUrl": None,
            "serviceManagementReference": None,
            "signInAudience": "AzureADMyOrg" if a % 3 else "AzureADMultipleOrgs",
            "spa": {"redirectUris": [f"https://app{a}.contoso.com/"] if spa else []},
            "tags": [],
            "tokenEncryptionKeyId": None,
            "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
            "web": {
                "homePageUrl": f"https://app{a}.contoso.com" if not spa else None,
                "implicitGrantSettings": {"enableAccessTokenIssuance": False, "enableIdTokenIssuance": a % 3 == 0},
                "logoutUrl": None,
                "redirectUriSettings": [] if spa
                else [{"uri": f"https://app{a}.contoso.com/signin-oidc", "index": None}],
                "redirectUris": [] if spa else [f"https://app{a}.contoso.com/signin-oidc"],
            },
        }

    def service_principal(self, s: int) -> Record:
        lay = self.layout
        r = rng(self.seed, "sp", s)
        apps = lay.sizes.applications
        if s < apps:
            app = self.application(s)
            app_id, name, owner_org = app["appId"], app["displayName"], lay.tenant_id
            roles, scopes = app["appRoles"], app["api"]["oauth2PermissionScopes"]
            keys, secrets = app["keyCredentials"], list[Record]()
            reply = app["web"]["redirectUris"] + app["spa"]["redirectUris"]
            homepage = app["web"]["homePageUrl"]
            audience = app["signInAudience"]
            names = [app_id, *app["identifierUris"]]
        else:
            k = s - apps
            if k < len(FIRST_PARTY):
                app_id, name = FIRST_PARTY[k]
                owner_org = MICROSOFT_TENANT
            else:
                app_id = ids.guid(self.seed, "third-party-app", k)
                company = vocab.COMPANIES[k % len(vocab.COMPANIES)]
                name = f"{company} {vocab.APP_TOPICS[k % len(vocab.APP_TOPICS)]}"
                owner_org = ids.guid(self.seed, "third-party-tenant", k % 7)
            roles = [{
                "allowedMemberTypes": ["Application"], "description": f"Allows the app to {value.lower()}.",
                "displayName": value, "id": role_id, "isEnabled": True, "origin": "Application", "value": value,
            } for role_id, value in GRAPH_APP_ROLES] if app_id == GRAPH_APP_ID else []
            scopes = []
            keys, secrets = [], list[Record]()
            reply, homepage = [], None
            audience = "AzureADMultipleOrgs"
            names = [app_id]
        return {
            "id": ids.guid(self.seed, "servicePrincipal", s),
            "deletedDateTime": None,
            "accountEnabled": r.random() > 0.05,
            "addIns": [],
            "alternativeNames": [],
            "appDescription": None,
            "appDisplayName": name,
            "appId": app_id,
            "applicationTemplateId": None,
            "appOwnerOrganizationId": owner_org,
            "appRoleAssignmentRequired": r.random() < 0.2,
            "appRoles": roles,
            "description": None,
            "disabledByMicrosoftStatus": None,
            "displayName": name,
            "homepage": homepage,
            "info": {"logoUrl": None, "marketingUrl": None, "privacyStatementUrl": None, "supportUrl": None,
                     "termsOfServiceUrl": None},
            "keyCredentials": keys,
            "loginUrl": None,
            "logoutUrl": None,
            "notes": None,
            "notificationEmailAddresses": [],
            "oauth2PermissionScopes": scopes,
            "passwordCredentials": secrets,
            "preferredSingleSignOnMode": None,
            "preferredTokenSigningKeyThumbprint": None,
            "replyUrls": reply,
            "resourceSpecificApplicationPermissions": [],
            "samlSingleSignOnSettings": None,
            "servicePrincipalNames": names,
            "servicePrincipalType": "Application",
            "signInAudience": audience,
            "tags": ["WindowsAzureActiveDirectoryIntegratedApp"],
            "tokenEncryptionKeyId": None,
            "verifiedPublisher": {"displayName": None, "verifiedPublisherId": None, "addedDateTime": None},
        }

    # --- roles -------------------------------------------------------------------------------------------------
    def role_template(self, t: int) -> Record:
        tid, name, description = ROLE_TEMPLATES[t]
        return {"id": tid, "deletedDateTime": None, "description": description, "displayName": name}

    def directory_role(self, k: int) -> Record:
        tid, name, description = ROLE_TEMPLATES[k]
        return {"id": ids.guid(self.seed, "directoryRole", k), "deletedDateTime": None, "description": description,
                "displayName": name, "roleTemplateId": tid}

    def role_member_indices(self, k: int) -> list[int]:
        """Users holding role k: the administrator holds Global Administrator; others spread deterministically."""
        n = self.layout.sizes.users
        count = min(n, max(1, self.layout.sizes.members_per_role))
        start = 0 if k == 0 else number(self.seed, "role-members", k) % n
        members = []
        for j in range(n):
            u = (start + j * 7) % n
            if u not in members and not self.layout.is_guest(u):
                members.append(u)
            if len(members) == count:
                break
        return members
