// m365-lake: Microsoft Graph -> Azure data lake sync on Azure Functions Flex Consumption.
// Deployed by `azd up`; parameters come from infra/main.parameters.json (azd environment values).
// Security posture: one user-assigned identity, no keys anywhere (storage shared keys off, Entra-only App Insights
// ingestion, Key Vault in RBAC mode), and each role scoped to the one resource that needs it.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for all resources (must offer the Flex Consumption plan).')
@metadata({ azd: { type: 'location' } })
param location string

@description('Object id of the deploying user or pipeline; gets Key Vault Secrets Officer to store the Graph credential. Empty: no assignment.')
param principalId string = ''

@allowed(['User', 'ServicePrincipal', 'Group'])
@description('Kind of principal in principalId (ServicePrincipal when deploying from a pipeline).')
param principalType string = 'User'

@description('Tenant id(s) whose data is read, comma separated. Empty: the tenant of this subscription.')
param graphTenantIds string = ''

@description('Tenant holding the Graph app registration, when it differs from the data tenant (multi-tenant app). Empty: same as the data tenant.')
param graphAppTenantId string = ''

@description('Client id of the Graph app registration (scripts/register_graph_app.py creates it). Not used with managed_identity.')
param graphClientId string = ''

@allowed(['secret', 'certificate', 'managed_identity'])
@description('How the app authenticates to Graph: client secret or certificate from Key Vault, or the function app identity.')
param graphCredentialType string = 'secret'

@allowed(['global', 'usgov', 'usgovdod', 'china'])
@description('Microsoft Graph national cloud.')
param graphCloud string = 'global'

@description('Enabled streams, comma separated, or all.')
param syncStreams string = 'all'

@description('NCRONTAB schedule (six fields, UTC) of the timer-triggered sync.')
param syncSchedule string = '0 0 */6 * * *'

@allowed(['jsonl', 'jsonl.gz'])
@description('File format of the written data.')
param outputFormat string = 'jsonl.gz'

@minLength(3)
@maxLength(63)
@description('Container in the data lake that receives the data.')
param outputContainer string = 'm365'

@description('Path prefix inside the output container.')
param outputPrefix string = 'graph'

@description('Name of an existing ADLS Gen2 / Blob account to write to. Empty: a new data lake account is created.')
param existingDataLakeAccountName string = ''

@description('Resource group of the existing data lake account (same subscription). Empty: the environment resource group.')
param existingDataLakeResourceGroup string = ''

@allowed(['3.11'])
@description('Python version of the Functions runtime; the app is built and tested on 3.11.')
param pythonVersion string = '3.11'

@allowed([512, 2048, 4096])
@description('Memory per Flex Consumption instance (MB).')
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
@description('Upper bound of Flex Consumption scale-out (the platform minimum is 40).')
param maximumInstanceCount int = 100

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var functionAppName = '${abbrs.webSitesFunctions}${resourceToken}'
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(resourceToken, 7)}'
var useExistingDataLake = !empty(existingDataLakeAccountName)
var dataLakeAccountName = useExistingDataLake ? existingDataLakeAccountName : '${abbrs.storageDataLakeAccounts}${resourceToken}'
var dataLakeResourceGroupName = empty(existingDataLakeResourceGroup) ? rg.name : existingDataLakeResourceGroup
// Built from the account name (not a module output) so it is known whichever branch deploys; the suffix keeps
// sovereign clouds working.
var outputAccountUrl = 'https://${dataLakeAccountName}.blob.${environment().suffixes.storage}'

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity 'app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring 'app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
  }
}

module hostStorage 'app/host-storage.bicep' = {
  name: 'host-storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    deploymentContainerName: deploymentContainerName
    appPrincipalId: identity.outputs.principalId
  }
}

module dataLake 'app/datalake.bicep' = if (!useExistingDataLake) {
  name: 'datalake'
  scope: rg
  params: {
    name: dataLakeAccountName
    location: location
    tags: tags
    containerName: outputContainer
    appPrincipalId: identity.outputs.principalId
  }
}

module existingDataLake 'app/datalake-container.bicep' = if (useExistingDataLake) {
  name: 'datalake-existing'
  scope: resourceGroup(dataLakeResourceGroupName)
  params: {
    accountName: dataLakeAccountName
    containerName: outputContainer
    appPrincipalId: identity.outputs.principalId
  }
}

module keyVault 'app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    appPrincipalId: identity.outputs.principalId
    deployerPrincipalId: principalId
    deployerPrincipalType: principalType
  }
}

module api 'app/api.bicep' = {
  name: 'api'
  scope: rg
  // The app's first run should find its data role in place.
  dependsOn: [dataLake, existingDataLake]
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    hostStorageName: hostStorage.outputs.name
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.connectionString
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    productSettings: {
      GRAPH_TENANT_IDS: empty(graphTenantIds) ? tenant().tenantId : graphTenantIds
      GRAPH_APP_TENANT_ID: graphAppTenantId
      GRAPH_CLIENT_ID: graphClientId
      GRAPH_CREDENTIAL_TYPE: graphCredentialType
      GRAPH_CLOUD: graphCloud
      KEY_VAULT_URL: keyVault.outputs.uri
      GRAPH_CLIENT_SECRET_NAME: 'graph-client-secret'
      GRAPH_CERTIFICATE_SECRET_NAME: 'graph-client-certificate'
      OUTPUT_ACCOUNT_URL: outputAccountUrl
      OUTPUT_CONTAINER: outputContainer
      OUTPUT_PREFIX: outputPrefix
      OUTPUT_FORMAT: outputFormat
      SYNC_STREAMS: syncStreams
      SYNC_SCHEDULE: syncSchedule
    }
  }
}

// azd writes these into .azure/<env>/.env; the postprovision hook reads KEY_VAULT_NAME and the secret names.
// Nothing secret is output: only names, URLs and public ids.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output AZURE_FUNCTION_APP_URL string = api.outputs.defaultUrl
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
output AZURE_MANAGED_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output KEY_VAULT_NAME string = keyVault.outputs.name
output KEY_VAULT_URL string = keyVault.outputs.uri
output GRAPH_CLIENT_SECRET_NAME string = 'graph-client-secret'
output GRAPH_CERTIFICATE_SECRET_NAME string = 'graph-client-certificate'
output OUTPUT_ACCOUNT_URL string = outputAccountUrl
output OUTPUT_CONTAINER string = outputContainer
output APPLICATIONINSIGHTS_NAME string = monitoring.outputs.appInsightsName
